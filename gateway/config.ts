/** Every setting of the platform, read from the environment once; the README's configuration table lists them. */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ALLOWED_ALGORITHMS, type AllowedAlgorithm } from './caller-auth.ts';

export const DEFAULT_SUBGRAPH_PORTS: Record<string, number> = { districts: 4001, students: 4002, staff: 4003 };
const projectRoot = fileURLToPath(new URL('..', import.meta.url));

const int = (name: string, fallback: number): number => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  return value;
};
const text = (name: string, fallback: string): string => process.env[name] || fallback;

export interface PlatformConfig {
  databaseUrl?: string;
  dataDir: string;
  embeddedPort: number;
  prefix: string;
  host: string;
  gatewayPort: number;
  subgraphPorts: Record<string, number>;
  poolSize: number;
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

export function readConfig(env = process.env): PlatformConfig {
  const algorithms = text('JWT_ALGORITHMS', ALLOWED_ALGORITHMS.join(',')).split(',').map((a) => a.trim());
  const unknown = algorithms.filter((a) => !(ALLOWED_ALGORITHMS as readonly string[]).includes(a));
  if (unknown.length) throw new Error(`JWT_ALGORITHMS may only list ${ALLOWED_ALGORITHMS.join(', ')}; refused: ${unknown.join(', ')}`);
  const prefix = text('DB_PREFIX', 'k12');
  if (!/^[a-z][a-z0-9_]{0,30}$/.test(prefix)) throw new Error('DB_PREFIX must be lower-case letters, digits and _ (at most 31)');
  return {
    databaseUrl: env.DATABASE_URL || undefined,
    dataDir: resolve(projectRoot, text('DATA_DIR', '.data')),
    embeddedPort: int('EMBEDDED_PG_PORT', 54329),
    prefix,
    host: text('HOST', '127.0.0.1'),
    gatewayPort: int('GATEWAY_PORT', 4000),
    subgraphPorts: {
      districts: int('DISTRICTS_PORT', DEFAULT_SUBGRAPH_PORTS.districts!),
      students: int('STUDENTS_PORT', DEFAULT_SUBGRAPH_PORTS.students!),
      staff: int('STAFF_PORT', DEFAULT_SUBGRAPH_PORTS.staff!),
    },
    poolSize: int('DB_POOL_SIZE', 10),
    jwt: {
      issuer: env.JWT_ISSUER || undefined,
      audience: env.JWT_AUDIENCE || undefined,
      jwksUrl: env.JWKS_URL || undefined,
      jwksFile: env.JWKS_FILE || undefined,
      tenantClaim: text('JWT_TENANT_CLAIM', 'tenant_id'),
      algorithms: algorithms as AllowedAlgorithm[],
      clockToleranceSeconds: int('JWT_CLOCK_TOLERANCE_SECONDS', 30),
    },
  };
}
