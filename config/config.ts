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

/** What one GraphQL operation may ask for; checked before any execution by the gateway and by every subgraph. */
export interface OperationLimits {
  maxDepth: number;
  maxAliases: number;
  maxRootFields: number;
  maxDirectives: number;
  maxTokens: number;
  /** Estimated values in the response: every list multiplies its subtree by its `first` (see http/operation-limits.ts). */
  maxCost: number;
  maxResponseBytes: number;
}

export const DEFAULT_OPERATION_LIMITS: Readonly<OperationLimits> = {
  maxDepth: 7,
  maxAliases: 15,
  maxRootFields: 10,
  maxDirectives: 20,
  maxTokens: 1000,
  maxCost: 50_000,
  maxResponseBytes: 5 * 1024 * 1024,
};

/** Requests of one district the gateway runs at once, and how many more may wait; past both it answers 429. */
export interface DistrictConcurrency {
  maxInFlight: number;
  maxQueued: number;
}

export const DEFAULT_DISTRICT_CONCURRENCY: Readonly<DistrictConcurrency> = { maxInFlight: 2, maxQueued: 16 };

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
  // Operation limits (docs/operation-limits.md says why each default).
  GRAPHQL_MAX_DEPTH: count(DEFAULT_OPERATION_LIMITS.maxDepth).pipe(z.number().min(1)),
  GRAPHQL_MAX_ALIASES: count(DEFAULT_OPERATION_LIMITS.maxAliases),
  GRAPHQL_MAX_ROOT_FIELDS: count(DEFAULT_OPERATION_LIMITS.maxRootFields).pipe(z.number().min(1)),
  GRAPHQL_MAX_DIRECTIVES: count(DEFAULT_OPERATION_LIMITS.maxDirectives),
  GRAPHQL_MAX_TOKENS: count(DEFAULT_OPERATION_LIMITS.maxTokens).pipe(z.number().min(1)),
  GRAPHQL_MAX_COST: count(DEFAULT_OPERATION_LIMITS.maxCost).pipe(z.number().min(1)),
  GRAPHQL_MAX_RESPONSE_BYTES: count(DEFAULT_OPERATION_LIMITS.maxResponseBytes).pipe(z.number().min(1024)),
  DISTRICT_MAX_IN_FLIGHT: count(DEFAULT_DISTRICT_CONCURRENCY.maxInFlight).pipe(z.number().min(1)),
  DISTRICT_MAX_QUEUED: count(DEFAULT_DISTRICT_CONCURRENCY.maxQueued),
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
  operationLimits: OperationLimits;
  districtConcurrency: DistrictConcurrency;
  jwt: {
    issuer?: string;
    audience?: string;
    jwksUrl?: string;
    jwksFile?: string;
    tenantClaim: string;
    algorithms: AllowedAlgorithm[];
    clockToleranceSeconds: number;
  };
}

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
    operationLimits: {
      maxDepth: e.GRAPHQL_MAX_DEPTH,
      maxAliases: e.GRAPHQL_MAX_ALIASES,
      maxRootFields: e.GRAPHQL_MAX_ROOT_FIELDS,
      maxDirectives: e.GRAPHQL_MAX_DIRECTIVES,
      maxTokens: e.GRAPHQL_MAX_TOKENS,
      maxCost: e.GRAPHQL_MAX_COST,
      maxResponseBytes: e.GRAPHQL_MAX_RESPONSE_BYTES,
    },
    districtConcurrency: { maxInFlight: e.DISTRICT_MAX_IN_FLIGHT, maxQueued: e.DISTRICT_MAX_QUEUED },
    jwt: {
      issuer: e.JWT_ISSUER,
      audience: e.JWT_AUDIENCE,
      jwksUrl: e.JWKS_URL,
      jwksFile: e.JWKS_FILE,
      tenantClaim: e.JWT_TENANT_CLAIM,
      algorithms: e.JWT_ALGORITHMS,
      clockToleranceSeconds: e.JWT_CLOCK_TOLERANCE_SECONDS,
    },
  };
}
