/**
 * Every setting of the platform, read from the environment once and validated here (the README's
 * configuration table lists them). No other module reads `process.env`.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { JWK } from 'jose';
import { z } from 'zod';
import { PROJECT_ROOT, SUPERGRAPH_FILE, readRegistry } from './registry.ts';

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
  /** The largest `first` any list field may be asked for (a field's own cap may be lower). */
  maxListSize: number;
  maxResponseBytes: number;
}

export const DEFAULT_OPERATION_LIMITS: Readonly<OperationLimits> = {
  maxDepth: 7,
  maxAliases: 15,
  maxRootFields: 10,
  maxDirectives: 20,
  maxTokens: 1000,
  maxCost: 50_000,
  maxListSize: 200,
  maxResponseBytes: 5 * 1024 * 1024,
};

/** Requests of one district the gateway runs at once, and how many more may wait; past both it answers 429. */
export interface DistrictConcurrency {
  maxInFlight: number;
  maxQueued: number;
}

export const DEFAULT_DISTRICT_CONCURRENCY: Readonly<DistrictConcurrency> = { maxInFlight: 2, maxQueued: 16 };

/** Tracing (telemetry/tracing.ts, docs/operations.md): nothing is traced or exported without an OTLP endpoint. */
export interface TracingConfig {
  /** OTLP/HTTP base URL (spans are posted to `<endpoint>/v1/traces`); undefined: tracing off. */
  otlpEndpoint?: string;
  /** Share of the requests the gateway traces, 0–1, chosen at random (never by the client's sampled flag); subgraphs follow it. */
  sampleRatio: number;
  /** How long spans wait in the batch before they are exported. */
  exportDelayMs: number;
}

/** Prometheus metrics (telemetry/metrics.ts, docs/operations.md): each service on a listener of its own, never the graph's. */
export interface MetricsConfig {
  enabled: boolean;
  /** The gateway's metrics port (GATEWAY_METRICS_PORT); 0: a free port, logged at start. */
  gatewayPort: number;
  /** By subgraph name (`<NAME>_METRICS_PORT`); 0: a free port, logged at start. */
  subgraphPorts: Record<string, number>;
  /** Districts that keep a label of their own (the busiest over the last window); the rest are `other`. */
  topDistricts: number;
  /** Operation names that keep a label of their own (trusted documents always do); the rest are `other`. */
  topOperations: number;
  /** How often the busiest districts and operations are chosen again, seconds. */
  windowSeconds: number;
}

export const DEFAULT_METRICS_LABELS = { topDistricts: 20, topOperations: 20, windowSeconds: 60 } as const;
/**
 * How a subgraph meets its database's transient faults (docs/operations.md, Faults and timeouts). The three session
 * timeouts are sent with every connection (overriding the role-wide defaults database/app-role-settings.ts pins);
 * `queryTimeoutMs` is the client's own, for a server that does not answer at all (frozen, unreachable).
 */
export interface DatabaseFaults {
  /** Longest wait for a pooled connection (a slot, or a new connection); then 503 DATABASE_BUSY or DATABASE_UNAVAILABLE. */
  acquireTimeoutMs: number;
  statementTimeoutMs: number;
  lockTimeoutMs: number;
  idleInTransactionTimeoutMs: number;
  queryTimeoutMs: number;
  /** Retries of a whole tenant transaction after a serialization failure, a deadlock or a connection lost before commit. */
  retry: { retries: number; initialDelayMs: number; maxDelayMs: number };
}

export const DEFAULT_DATABASE_FAULTS: Readonly<DatabaseFaults> = {
  acquireTimeoutMs: 10_000,
  statementTimeoutMs: 30_000,
  lockTimeoutMs: 10_000,
  idleInTransactionTimeoutMs: 60_000,
  queryTimeoutMs: 35_000,
  retry: { retries: 3, initialDelayMs: 20, maxDelayMs: 1000 },
};

/** The gateway's guard on each subgraph fetch: a timeout, and a circuit breaker per subgraph. */
export interface SubgraphFetchFaults {
  timeoutMs: number;
  /** Consecutive failures (connection errors, timeouts, 5xx) that open a subgraph's breaker. */
  breakerFailures: number;
  /** How long an open breaker fails fast before one probe fetch is let through (half-open). */
  breakerHalfOpenMs: number;
}

export const DEFAULT_SUBGRAPH_FETCH_FAULTS: Readonly<SubgraphFetchFaults> = {
  timeoutMs: 30_000,
  breakerFailures: 5,
  breakerHalfOpenMs: 5000,
};

/**
 * Requests of one district the gateway admits per second (`perSecond`, 0: no rate limit), plus `burst` more per
 * burst window once a second's allowance is used up, and the estimated cost (http/operation-limits.ts) of its
 * operations per second (`costPerSecond`, 0: none); past either it answers 429 (gateway/district-limits.ts).
 */
export interface DistrictRate {
  perSecond: number;
  burst: number;
  costPerSecond: number;
}

/** docs/operations.md (Fairness and limits) says why: a district alone stays under a fifth of one box's capacity. */
export const DEFAULT_DISTRICT_RATE: Readonly<DistrictRate> = { perSecond: 50, burst: 100, costPerSecond: 5_000 };

/** Origins a browser page may call the gateway from when CORS_ORIGINS is unset and NODE_ENV is not production (Vite's dev server). */
export const DEVELOPMENT_CORS_ORIGINS = ['http://localhost:5173', 'http://127.0.0.1:5173'] as const;

/** The committed trusted-documents manifest (`npm run operations:manifest`), relative to the project. */
export const OPERATIONS_MANIFEST_FILE = 'operations/persisted-query-manifest.json';

/** `allow`: any operation, and the manifest's by hash; `enforce`: only the manifest's operations. */
export type TrustedDocumentsMode = 'allow' | 'enforce';

/** What the gateway offers browser frontends. */
export interface FrontendConfig {
  /** Origins whose pages may call the gateway (CORS); empty: no cross-origin access. */
  corsOrigins: string[];
  /** GraphiQL on GET /graphql for a browser, and introspection (with a token). */
  explorer: boolean;
  trustedDocuments: { mode: TrustedDocumentsMode; manifestPath: string };
}

/** An unset or empty variable takes the default. */
const optional = <T extends z.ZodType>(schema: T) => z.preprocess((value) => (value === '' ? undefined : value), schema.optional());
const count = (fallback: number) => optional(z.coerce.number().int().min(0)).transform((v) => v ?? fallback);
const port = (fallback: number) => optional(z.coerce.number().int().min(0).max(65535)).transform((v) => v ?? fallback);
const text = (fallback: string) => optional(z.string()).transform((v) => v ?? fallback);
const flag = (fallback: boolean) =>
  optional(z.enum(['true', 'false', '1', '0'], { message: 'true or false' })).transform((v) =>
    v === undefined ? fallback : v === 'true' || v === '1',
  );
/** An inline JWK (JSON text): parsed here, so a malformed key fails the configuration, not the first request. */
const inlineJwk = optional(
  z.string().transform((raw, context) => {
    try {
      const jwk = JSON.parse(raw) as unknown;
      if (typeof jwk === 'object' && jwk !== null && typeof (jwk as JWK).kty === 'string') return jwk;
    } catch {
      // reported below
    }
    context.addIssue({ code: 'custom', message: 'must be one JWK as JSON (an object with "kty")' });
    return z.NEVER;
  }),
);

const EnvSchema = z.object({
  DATABASE_URL: optional(z.url({ protocol: /^postgres(ql)?$/ })),
  DATA_DIR: text('.data'),
  EMBEDDED_PG_PORT: port(54329),
  DB_PREFIX: text('k12').pipe(z.string().regex(/^[a-z][a-z0-9_]{0,30}$/, 'lower-case letters, digits and _ (at most 31)')),
  HOST: text('127.0.0.1'),
  GATEWAY_PORT: port(4000),
  DB_POOL_SIZE: count(10).pipe(z.number().min(1)),
  DISTRICT_STATUS_TTL_MS: count(5000),
  // Shared district status, its invalidations and the tenant-context replay guard (docs/district-lifecycle.md); unset: in-process.
  REDIS_URL: optional(z.string().regex(/^rediss?:\/\//, 'a redis:// or rediss:// URL')),
  LOG_LEVEL: optional(z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])).transform((v) => v ?? 'info'),
  JWT_ISSUER: optional(z.string()),
  JWT_AUDIENCE: optional(z.string()),
  JWKS_URL: optional(z.url()),
  JWKS_FILE: optional(z.string()),
  JWT_TENANT_CLAIM: text('tenant_id'),
  JWT_ALGORITHMS: text(ALLOWED_ALGORITHMS.join(',')).transform((raw, context) => {
    const algorithms = raw.split(',').map((a) => a.trim());
    const refused = algorithms.filter((a) => !(ALLOWED_ALGORITHMS as readonly string[]).includes(a));
    if (refused.length)
      context.addIssue({ code: 'custom', message: `may only list ${ALLOWED_ALGORITHMS.join(', ')}; refused: ${refused.join(', ')}` });
    return algorithms as AllowedAlgorithm[];
  }),
  JWT_CLOCK_TOLERANCE_SECONDS: count(30),
  // Operator tools: defaults of their command-line options.
  LEGACY_SOURCE_URL: optional(z.string().includes('{slug}', { message: 'must contain {slug}' })),
  CONSOLIDATION_TARGET_URL: optional(z.string().includes('{service}', { message: 'must contain {service}' })),
  BENCH_DATABASE_URL: text('postgres://postgres@127.0.0.1:5432/postgres').pipe(z.url({ protocol: /^postgres(ql)?$/ })),
  SUPERGRAPH_PATH: text(SUPERGRAPH_FILE),
  SUPERGRAPH_URL: optional(z.url({ protocol: /^https?$/ })),
  SUPERGRAPH_POLL_MS: count(1000).pipe(z.number().min(100)),
  TENANT_CONTEXT_PRIVATE_KEY: inlineJwk,
  TENANT_CONTEXT_PRIVATE_KEY_FILE: optional(z.string()),
  TENANT_CONTEXT_PUBLIC_KEY: inlineJwk,
  TENANT_CONTEXT_PUBLIC_KEY_FILE: optional(z.string()),
  SHUTDOWN_GRACE_MS: count(10_000),
  REUSE_PORT: flag(false),
  // Operation limits (docs/operation-limits.md says why each default).
  GRAPHQL_MAX_DEPTH: count(DEFAULT_OPERATION_LIMITS.maxDepth).pipe(z.number().min(1)),
  GRAPHQL_MAX_ALIASES: count(DEFAULT_OPERATION_LIMITS.maxAliases),
  GRAPHQL_MAX_ROOT_FIELDS: count(DEFAULT_OPERATION_LIMITS.maxRootFields).pipe(z.number().min(1)),
  GRAPHQL_MAX_DIRECTIVES: count(DEFAULT_OPERATION_LIMITS.maxDirectives),
  GRAPHQL_MAX_TOKENS: count(DEFAULT_OPERATION_LIMITS.maxTokens).pipe(z.number().min(1)),
  GRAPHQL_MAX_COST: count(DEFAULT_OPERATION_LIMITS.maxCost).pipe(z.number().min(1)),
  GRAPHQL_MAX_LIST_SIZE: count(DEFAULT_OPERATION_LIMITS.maxListSize).pipe(z.number().min(1)),
  GRAPHQL_MAX_RESPONSE_BYTES: count(DEFAULT_OPERATION_LIMITS.maxResponseBytes).pipe(z.number().min(1024)),
  DISTRICT_MAX_IN_FLIGHT: count(DEFAULT_DISTRICT_CONCURRENCY.maxInFlight).pipe(z.number().min(1)),
  DISTRICT_MAX_QUEUED: count(DEFAULT_DISTRICT_CONCURRENCY.maxQueued),
  // Tracing (docs/operations.md, Traces).
  OTEL_EXPORTER_OTLP_ENDPOINT: optional(z.url({ protocol: /^https?$/ })),
  OTEL_TRACES_SAMPLE_RATIO: optional(z.coerce.number().min(0).max(1)).transform((v) => v ?? 1),
  OTEL_BSP_SCHEDULE_DELAY: count(5000).pipe(z.number().min(1)),
  // Faults and timeouts (docs/operations.md).
  DB_ACQUIRE_TIMEOUT_MS: count(DEFAULT_DATABASE_FAULTS.acquireTimeoutMs).pipe(z.number().min(1)),
  DB_STATEMENT_TIMEOUT_MS: count(DEFAULT_DATABASE_FAULTS.statementTimeoutMs).pipe(z.number().min(1)),
  DB_LOCK_TIMEOUT_MS: count(DEFAULT_DATABASE_FAULTS.lockTimeoutMs).pipe(z.number().min(1)),
  DB_IDLE_IN_TRANSACTION_TIMEOUT_MS: count(DEFAULT_DATABASE_FAULTS.idleInTransactionTimeoutMs).pipe(z.number().min(1)),
  DB_QUERY_TIMEOUT_MS: count(DEFAULT_DATABASE_FAULTS.queryTimeoutMs).pipe(z.number().min(1)),
  DB_TRANSACTION_RETRIES: count(DEFAULT_DATABASE_FAULTS.retry.retries).pipe(z.number().max(10)),
  DB_TRANSACTION_RETRY_INITIAL_DELAY_MS: count(DEFAULT_DATABASE_FAULTS.retry.initialDelayMs).pipe(z.number().min(1)),
  DB_TRANSACTION_RETRY_MAX_DELAY_MS: count(DEFAULT_DATABASE_FAULTS.retry.maxDelayMs).pipe(z.number().min(1)),
  SUBGRAPH_TIMEOUT_MS: count(DEFAULT_SUBGRAPH_FETCH_FAULTS.timeoutMs).pipe(z.number().min(1)),
  SUBGRAPH_BREAKER_FAILURES: count(DEFAULT_SUBGRAPH_FETCH_FAULTS.breakerFailures).pipe(z.number().min(1)),
  SUBGRAPH_BREAKER_HALF_OPEN_MS: count(DEFAULT_SUBGRAPH_FETCH_FAULTS.breakerHalfOpenMs).pipe(z.number().min(1)),
  DISTRICT_RATE_PER_SECOND: count(DEFAULT_DISTRICT_RATE.perSecond),
  DISTRICT_RATE_BURST: count(DEFAULT_DISTRICT_RATE.burst),
  DISTRICT_COST_PER_SECOND: count(DEFAULT_DISTRICT_RATE.costPerSecond),
  // Frontends (README, Frontends): development defaults unless NODE_ENV=production.
  NODE_ENV: optional(z.string()),
  CORS_ORIGINS: z
    .string()
    .optional()
    .transform((raw, context) => {
      if (raw === undefined) return undefined;
      const origins = raw
        .split(',')
        .map((origin) => origin.trim())
        .filter(Boolean);
      for (const origin of origins) {
        // An origin is scheme://host[:port], exactly as a browser sends it; never `*`.
        let canonical: string | undefined;
        try {
          canonical = new URL(origin).origin;
        } catch {
          canonical = undefined;
        }
        if (canonical !== origin || !/^https?:/.test(origin))
          context.addIssue({ code: 'custom', message: `${origin} is not an origin (scheme://host[:port], no path, never *)` });
      }
      return origins;
    }),
  EXPLORER: optional(z.enum(['on', 'off'], { message: 'on or off' })),
  TRUSTED_DOCUMENTS: optional(z.enum(['allow', 'enforce'], { message: 'allow or enforce' })),
  TRUSTED_DOCUMENTS_MANIFEST: text(OPERATIONS_MANIFEST_FILE),
  // Metrics (docs/operations.md); each subgraph's port is `<NAME>_METRICS_PORT`, read beside its graph port.
  METRICS: optional(z.enum(['on', 'off'], { message: 'on or off' })),
  GATEWAY_METRICS_PORT: port(0),
  METRICS_TOP_DISTRICTS: count(DEFAULT_METRICS_LABELS.topDistricts).pipe(z.number().min(1)),
  METRICS_TOP_OPERATIONS: count(DEFAULT_METRICS_LABELS.topOperations).pipe(z.number().min(1)),
  METRICS_WINDOW_SECONDS: count(DEFAULT_METRICS_LABELS.windowSeconds).pipe(z.number().min(1)),
});

/** A key given inline (`…_KEY`, JSON) or as a file (`…_KEY_FILE`); read with readJwk. */
export type JwkSource = { jwk: JWK; variable: string } | { file: string; variable: string };

export interface PlatformConfig {
  databaseUrl?: string;
  dataDir: string;
  embeddedPort: number;
  prefix: string;
  host: string;
  /** Where this machine reaches the platform's own servers: HOST, or 127.0.0.1 when they listen on every interface. */
  localHost: string;
  gatewayPort: number;
  /** By subgraph name, from each registry entry's port variable or its default. */
  subgraphPorts: Record<string, number>;
  poolSize: number;
  districtStatusTtlMs: number;
  /** Redis for the shared district status and replay guard; undefined: each process keeps its own. */
  redisUrl?: string;
  logLevel: string;
  /** Where the gateway reads its supergraph: SUPERGRAPH_URL when set, else the file; checked every `pollMs`. */
  supergraph: { path: string; url?: string; pollMs: number };
  /** The tenant-context keys: the gateway signs with the private one, every subgraph verifies with the public one. */
  tenantContext: { privateKey?: JwkSource; publicKey?: JwkSource };
  /** By subgraph name, `<NAME>_DATABASE_URL`: the URL of its application role (what a subgraph process connects with). */
  subgraphDatabaseUrls: Record<string, string | undefined>;
  /** By subgraph name, where the gateway sends its fetches: `<NAME>_ROUTING_URL`, or HOST and the subgraph's port. */
  subgraphRoutingUrls: Record<string, string>;
  /** How long a stopping service waits for in-flight requests before closing their connections. */
  shutdownGraceMs: number;
  /** Listen with SO_REUSEPORT, so a replacement replica can bind the same port before the old one stops (Linux). */
  reusePort: boolean;
  operationLimits: OperationLimits;
  districtConcurrency: DistrictConcurrency;
  tracing: TracingConfig;
  databaseFaults: DatabaseFaults;
  subgraphFetch: SubgraphFetchFaults;
  districtRate: DistrictRate;
  frontend: FrontendConfig;
  metrics: MetricsConfig;
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
  const production = e.NODE_ENV === 'production';
  const subgraphPorts: Record<string, number> = {};
  const subgraphDatabaseUrls: Record<string, string | undefined> = {};
  const subgraphRoutingUrls: Record<string, string> = {};
  const subgraphMetricsPorts: Record<string, number> = {};
  const localHost = e.HOST === '0.0.0.0' ? '127.0.0.1' : e.HOST;
  for (const entry of readRegistry()) {
    const value = port(entry.port.default).safeParse(env[entry.port.env]);
    if (!value.success) throw new Error(`invalid configuration: ${entry.port.env} must be a port number`);
    subgraphPorts[entry.name] = value.data;
    const variable = subgraphVariable(entry.name);
    const databaseUrl = optional(z.url({ protocol: /^postgres(ql)?$/ })).safeParse(env[`${variable}_DATABASE_URL`]);
    if (!databaseUrl.success) throw new Error(`invalid configuration: ${variable}_DATABASE_URL must be a postgres:// URL`);
    subgraphDatabaseUrls[entry.name] = databaseUrl.data;
    const routingUrl = optional(z.url({ protocol: /^https?$/ })).safeParse(env[`${variable}_ROUTING_URL`]);
    if (!routingUrl.success) throw new Error(`invalid configuration: ${variable}_ROUTING_URL must be an http(s) URL`);
    subgraphRoutingUrls[entry.name] = routingUrl.data ?? `http://${localHost}:${value.data}/graphql`;
    const metricsPort = port(0).safeParse(env[`${variable}_METRICS_PORT`]);
    if (!metricsPort.success) throw new Error(`invalid configuration: ${variable}_METRICS_PORT must be a port number`);
    subgraphMetricsPorts[entry.name] = metricsPort.data;
  }
  const keySource = (inline: JWK | undefined, file: string | undefined, variable: string): JwkSource | undefined => {
    if (inline && file) throw new Error(`invalid configuration: set ${variable} or ${variable}_FILE, not both`);
    if (inline) return { jwk: inline, variable };
    return file ? { file: resolve(PROJECT_ROOT, file), variable: `${variable}_FILE` } : undefined;
  };
  return {
    databaseUrl: e.DATABASE_URL,
    dataDir: resolve(PROJECT_ROOT, e.DATA_DIR),
    embeddedPort: e.EMBEDDED_PG_PORT,
    prefix: e.DB_PREFIX,
    host: e.HOST,
    localHost,
    gatewayPort: e.GATEWAY_PORT,
    subgraphPorts,
    poolSize: e.DB_POOL_SIZE,
    districtStatusTtlMs: e.DISTRICT_STATUS_TTL_MS,
    redisUrl: e.REDIS_URL,
    logLevel: e.LOG_LEVEL,
    supergraph: { path: resolve(PROJECT_ROOT, e.SUPERGRAPH_PATH), url: e.SUPERGRAPH_URL, pollMs: e.SUPERGRAPH_POLL_MS },
    tenantContext: {
      privateKey: keySource(e.TENANT_CONTEXT_PRIVATE_KEY, e.TENANT_CONTEXT_PRIVATE_KEY_FILE, 'TENANT_CONTEXT_PRIVATE_KEY'),
      publicKey: keySource(e.TENANT_CONTEXT_PUBLIC_KEY, e.TENANT_CONTEXT_PUBLIC_KEY_FILE, 'TENANT_CONTEXT_PUBLIC_KEY'),
    },
    subgraphDatabaseUrls,
    subgraphRoutingUrls,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    reusePort: e.REUSE_PORT,
    operationLimits: {
      maxDepth: e.GRAPHQL_MAX_DEPTH,
      maxAliases: e.GRAPHQL_MAX_ALIASES,
      maxRootFields: e.GRAPHQL_MAX_ROOT_FIELDS,
      maxDirectives: e.GRAPHQL_MAX_DIRECTIVES,
      maxTokens: e.GRAPHQL_MAX_TOKENS,
      maxCost: e.GRAPHQL_MAX_COST,
      maxListSize: e.GRAPHQL_MAX_LIST_SIZE,
      maxResponseBytes: e.GRAPHQL_MAX_RESPONSE_BYTES,
    },
    districtConcurrency: { maxInFlight: e.DISTRICT_MAX_IN_FLIGHT, maxQueued: e.DISTRICT_MAX_QUEUED },
    tracing: {
      otlpEndpoint: e.OTEL_EXPORTER_OTLP_ENDPOINT,
      sampleRatio: e.OTEL_TRACES_SAMPLE_RATIO,
      exportDelayMs: e.OTEL_BSP_SCHEDULE_DELAY,
    },
    databaseFaults: {
      acquireTimeoutMs: e.DB_ACQUIRE_TIMEOUT_MS,
      statementTimeoutMs: e.DB_STATEMENT_TIMEOUT_MS,
      lockTimeoutMs: e.DB_LOCK_TIMEOUT_MS,
      idleInTransactionTimeoutMs: e.DB_IDLE_IN_TRANSACTION_TIMEOUT_MS,
      queryTimeoutMs: e.DB_QUERY_TIMEOUT_MS,
      retry: {
        retries: e.DB_TRANSACTION_RETRIES,
        initialDelayMs: e.DB_TRANSACTION_RETRY_INITIAL_DELAY_MS,
        maxDelayMs: e.DB_TRANSACTION_RETRY_MAX_DELAY_MS,
      },
    },
    subgraphFetch: {
      timeoutMs: e.SUBGRAPH_TIMEOUT_MS,
      breakerFailures: e.SUBGRAPH_BREAKER_FAILURES,
      breakerHalfOpenMs: e.SUBGRAPH_BREAKER_HALF_OPEN_MS,
    },
    districtRate: { perSecond: e.DISTRICT_RATE_PER_SECOND, burst: e.DISTRICT_RATE_BURST, costPerSecond: e.DISTRICT_COST_PER_SECOND },
    frontend: {
      corsOrigins: e.CORS_ORIGINS ?? (production ? [] : [...DEVELOPMENT_CORS_ORIGINS]),
      explorer: e.EXPLORER === undefined ? !production : e.EXPLORER === 'on',
      trustedDocuments: {
        mode: e.TRUSTED_DOCUMENTS ?? (production ? 'enforce' : 'allow'),
        manifestPath: resolve(PROJECT_ROOT, e.TRUSTED_DOCUMENTS_MANIFEST),
      },
    },
    metrics: {
      enabled: e.METRICS !== 'off',
      gatewayPort: e.GATEWAY_METRICS_PORT,
      subgraphPorts: subgraphMetricsPorts,
      topDistricts: e.METRICS_TOP_DISTRICTS,
      topOperations: e.METRICS_TOP_OPERATIONS,
      windowSeconds: e.METRICS_WINDOW_SECONDS,
    },
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

/** The prefix of a subgraph's own variables: `students` → `STUDENTS` (`STUDENTS_DATABASE_URL`, `STUDENTS_ROUTING_URL`, `STUDENTS_METRICS_PORT`). */
export const subgraphVariable = (name: string) => name.toUpperCase();

/** The JWK a key source names; a missing or malformed key throws naming the variable. */
export async function readJwk(source: JwkSource): Promise<JWK> {
  if ('jwk' in source) return source.jwk;
  const text = await readFile(source.file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new Error(`${source.variable}: cannot read ${source.file} (${error.code ?? error.message})`);
  });
  const jwk = inlineJwk.safeParse(text);
  if (!jwk.success || !jwk.data) throw new Error(`${source.variable}: ${source.file} must hold one JWK as JSON`);
  return jwk.data;
}
