/**
 * Every setting of the platform, read from the environment once and validated here (the README's
 * configuration table lists them). No other module reads `process.env`.
 */
import { resolve } from 'node:path';
import { z } from 'zod';
import { PROJECT_ROOT, readRegistry } from './registry.ts';

/** Caller-token algorithms the gateway may accept: asymmetric only. */
export const ALLOWED_ALGORITHMS = ['RS256', 'ES256'] as const;
export type AllowedAlgorithm = (typeof ALLOWED_ALGORITHMS)[number];

type Env = Record<string, string | undefined>;

/** An unset or empty variable takes the default. */
const optional = <T extends z.ZodType>(schema: T) => z.preprocess((value) => (value === '' ? undefined : value), schema.optional());
const count = (fallback: number) => optional(z.coerce.number().int().min(0)).transform((v) => v ?? fallback);
const port = (fallback: number) => optional(z.coerce.number().int().min(0).max(65535)).transform((v) => v ?? fallback);
const text = (fallback: string) => optional(z.string()).transform((v) => v ?? fallback);

const EnvSchema = z.object({
  DATABASE_URL: optional(z.url({ protocol: /^postgres(ql)?$/ })),
  DATA_DIR: text('.data'),
  EMBEDDED_PG_PORT: port(54329),
  DB_PREFIX: text('k12').pipe(z.string().regex(/^[a-z][a-z0-9_]{0,30}$/, 'lower-case letters, digits and _ (at most 31)')),
  HOST: text('127.0.0.1'),
  GATEWAY_PORT: port(4000),
  DB_POOL_SIZE: count(10).pipe(z.number().min(1)),
  DISTRICT_STATUS_TTL_MS: count(5000),
  LOG_LEVEL: optional(z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])).transform((v) => v ?? 'info'),
  JWT_ISSUER: optional(z.string()),
  JWT_AUDIENCE: optional(z.string()),
  JWKS_URL: optional(z.url()),
  JWKS_FILE: optional(z.string()),
  JWT_TENANT_CLAIM: text('tenant_id'),
  JWT_ALGORITHMS: text(ALLOWED_ALGORITHMS.join(',')).transform((raw, context) => {
    const algorithms = raw.split(',').map((a) => a.trim());
    const refused = algorithms.filter((a) => !(ALLOWED_ALGORITHMS as readonly string[]).includes(a));
    if (refused.length) context.addIssue({ code: 'custom', message: `may only list ${ALLOWED_ALGORITHMS.join(', ')}; refused: ${refused.join(', ')}` });
    return algorithms as AllowedAlgorithm[];
  }),
  JWT_CLOCK_TOLERANCE_SECONDS: count(30),
  // Operator tools: defaults of their command-line options.
  LEGACY_SOURCE_URL: optional(z.string().includes('{slug}', { message: 'must contain {slug}' })),
  CONSOLIDATION_TARGET_URL: optional(z.string().includes('{service}', { message: 'must contain {service}' })),
  BENCH_DATABASE_URL: text('postgres://postgres@127.0.0.1:5432/postgres').pipe(z.url({ protocol: /^postgres(ql)?$/ })),
});

export interface PlatformConfig {
  databaseUrl?: string;
  dataDir: string;
  embeddedPort: number;
  prefix: string;
  host: string;
  gatewayPort: number;
  /** By subgraph name, from each registry entry's port variable or its default. */
  subgraphPorts: Record<string, number>;
  poolSize: number;
  districtStatusTtlMs: number;
  logLevel: string;
  jwt: {
    issuer?: string;
    audience?: string;
    jwksUrl?: string;
    jwksFile?: string;
    tenantClaim: string;
    algorithms: AllowedAlgorithm[];
    clockToleranceSeconds: number;
  };
  /** Defaults of the operator tools' options (each tool's flag wins). */
  tools: {
    /** URL template of the legacy district databases, containing {slug}. */
    legacySourceUrl?: string;
    /** URL template of the service databases as the owner role, containing {service}. */
    consolidationTargetUrl?: string;
    /** Admin URL of the PostgreSQL server `npm run bench:consolidate` uses. */
    benchDatabaseUrl: string;
  };
}

/**
 * This process's environment with `overrides` on top: the environment of a child process, or the one to
 * read a child's configuration from (`readConfig(environmentWith({ … }))`).
 */
export const environmentWith = (overrides: Env = {}): Env => ({ ...process.env, ...overrides });

/** Parses the environment; a bad value throws one error naming every variable that is wrong. */
export function readConfig(env: Env = process.env): PlatformConfig {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    throw new Error(`invalid configuration: ${parsed.error.issues.map((issue) => `${issue.path.join('.')} ${issue.message}`).join('; ')}`);
  }
  const e = parsed.data;
  const subgraphPorts: Record<string, number> = {};
  for (const entry of readRegistry()) {
    const value = port(entry.port.default).safeParse(env[entry.port.env]);
    if (!value.success) throw new Error(`invalid configuration: ${entry.port.env} must be a port number`);
    subgraphPorts[entry.name] = value.data;
  }
  return {
    databaseUrl: e.DATABASE_URL,
    dataDir: resolve(PROJECT_ROOT, e.DATA_DIR),
    embeddedPort: e.EMBEDDED_PG_PORT,
    prefix: e.DB_PREFIX,
    host: e.HOST,
    gatewayPort: e.GATEWAY_PORT,
    subgraphPorts,
    poolSize: e.DB_POOL_SIZE,
    districtStatusTtlMs: e.DISTRICT_STATUS_TTL_MS,
    logLevel: e.LOG_LEVEL,
    jwt: {
      issuer: e.JWT_ISSUER,
      audience: e.JWT_AUDIENCE,
      jwksUrl: e.JWKS_URL,
      jwksFile: e.JWKS_FILE,
      tenantClaim: e.JWT_TENANT_CLAIM,
      algorithms: e.JWT_ALGORITHMS,
      clockToleranceSeconds: e.JWT_CLOCK_TOLERANCE_SECONDS,
    },
    tools: {
      legacySourceUrl: e.LEGACY_SOURCE_URL,
      consolidationTargetUrl: e.CONSOLIDATION_TARGET_URL,
      benchDatabaseUrl: e.BENCH_DATABASE_URL,
    },
  };
}
