/** Every setting of the platform, read from the environment once; the README's configuration table lists them. */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ALLOWED_ALGORITHMS, type AllowedAlgorithm } from './caller-auth.ts';

export const DEFAULT_SUBGRAPH_PORTS: Record<string, number> = { districts: 4001, students: 4002, staff: 4003 };
const projectRoot = fileURLToPath(new URL('..', import.meta.url));

type Env = Record<string, string | undefined>;

const int = (env: Env, name: string, fallback: number): number => {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  return value;
};
const text = (env: Env, name: string, fallback: string): string => env[name] || fallback;

export interface PlatformConfig {
  databaseUrl?: string;
  dataDir: string;
  embeddedPort: number;
  prefix: string;
  host: string;
  gatewayPort: number;
  subgraphPorts: Record<string, number>;
  poolSize: number;
  districtStatusTtlMs: number;
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

export function readConfig(env: Env = process.env): PlatformConfig {
  const algorithms = text(env, 'JWT_ALGORITHMS', ALLOWED_ALGORITHMS.join(',')).split(',').map((a) => a.trim());
  const unknown = algorithms.filter((a) => !(ALLOWED_ALGORITHMS as readonly string[]).includes(a));
  if (unknown.length) throw new Error(`JWT_ALGORITHMS may only list ${ALLOWED_ALGORITHMS.join(', ')}; refused: ${unknown.join(', ')}`);
  const prefix = text(env, 'DB_PREFIX', 'k12');
  if (!/^[a-z][a-z0-9_]{0,30}$/.test(prefix)) throw new Error('DB_PREFIX must be lower-case letters, digits and _ (at most 31)');
  return {
    databaseUrl: env.DATABASE_URL || undefined,
    dataDir: resolve(projectRoot, text(env, 'DATA_DIR', '.data')),
    embeddedPort: int(env, 'EMBEDDED_PG_PORT', 54329),
    prefix,
    host: text(env, 'HOST', '127.0.0.1'),
    gatewayPort: int(env, 'GATEWAY_PORT', 4000),
    subgraphPorts: {
      districts: int(env, 'DISTRICTS_PORT', DEFAULT_SUBGRAPH_PORTS.districts!),
      students: int(env, 'STUDENTS_PORT', DEFAULT_SUBGRAPH_PORTS.students!),
      staff: int(env, 'STAFF_PORT', DEFAULT_SUBGRAPH_PORTS.staff!),
    },
    poolSize: int(env, 'DB_POOL_SIZE', 10),
    districtStatusTtlMs: int(env, 'DISTRICT_STATUS_TTL_MS', 5000),
    jwt: {
      issuer: env.JWT_ISSUER || undefined,
      audience: env.JWT_AUDIENCE || undefined,
      jwksUrl: env.JWKS_URL || undefined,
      jwksFile: env.JWKS_FILE || undefined,
      tenantClaim: text(env, 'JWT_TENANT_CLAIM', 'tenant_id'),
      algorithms: algorithms as AllowedAlgorithm[],
      clockToleranceSeconds: int(env, 'JWT_CLOCK_TOLERANCE_SECONDS', 30),
    },
  };
}
