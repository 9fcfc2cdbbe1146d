/**
 * The service processes of a platform whose databases are ready: the gateway and each subgraph, through the same
 * entry points a deployment runs (`subgraph-server/main.ts <name>`, `gateway/main.ts`), each with only the
 * secrets it needs. `npm start` supervises them (dev/start.ts); bench part 12 starts extra sets beside it.
 */
import { fileURLToPath } from 'node:url';
import { environmentWith, subgraphVariable } from '../config/config.ts';
import { DEV_AUDIENCE, DEV_ISSUER, keyFiles } from './keys.ts';
import type { PreparedPlatform } from './platform.ts';
import type { ChildSpec } from './supervisor.ts';

const GATEWAY_MAIN = fileURLToPath(new URL('../gateway/main.ts', import.meta.url));
const SUBGRAPH_MAIN = fileURLToPath(new URL('../subgraph-server/main.ts', import.meta.url));
/** Loaded before each service's modules, so tracing can hook them (telemetry/register.ts; inert without an OTLP endpoint). */
const TRACING_REGISTER = ['--import', fileURLToPath(new URL('../telemetry/register.ts', import.meta.url))];

type Env = Record<string, string | undefined>;

/**
 * What each child gets: this environment without the secrets it has no use for (the admin DATABASE_URL,
 * the other services' database URLs, a tenant-context key of the other side), plus its own.
 */
export function childSpecs(
  prepared: Pick<PreparedPlatform, 'config' | 'databases'> & { definitions: readonly { name: string }[] },
  env: Env = environmentWith(),
): ChildSpec[] {
  const { config, databases } = prepared;
  const files = keyFiles(config.dataDir);
  const base: Env = Object.fromEntries(
    Object.entries(env).filter(
      ([name]) => name !== 'DATABASE_URL' && !name.startsWith('TENANT_CONTEXT_') && !name.endsWith('_DATABASE_URL'),
    ),
  );
  const ready = (port: number) => `http://${config.localHost}:${port}/health/ready`;
  const subgraphs = prepared.definitions.map(({ name }) => ({
    name,
    args: [...TRACING_REGISTER, SUBGRAPH_MAIN, name],
    env: {
      ...base,
      [`${subgraphVariable(name)}_DATABASE_URL`]: databases[name]!.appUrl,
      TENANT_CONTEXT_PUBLIC_KEY_FILE: files.contextPublic,
    },
    readyUrl: ready(config.subgraphPorts[name]!),
  }));
  const usesDevIssuer = !config.jwt.jwksUrl && !config.jwt.jwksFile;
  const gateway = {
    name: 'gateway',
    args: [...TRACING_REGISTER, GATEWAY_MAIN],
    env: {
      ...base,
      TENANT_CONTEXT_PRIVATE_KEY_FILE: files.contextPrivate,
      ...(usesDevIssuer
        ? { JWKS_FILE: files.devJwks, JWT_ISSUER: config.jwt.issuer ?? DEV_ISSUER, JWT_AUDIENCE: config.jwt.audience ?? DEV_AUDIENCE }
        : {}),
    },
    readyUrl: ready(config.gatewayPort),
  };
  return [...subgraphs, gateway];
}
