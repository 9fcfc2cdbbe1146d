/**
 * `npm start`: the whole platform in one terminal. PostgreSQL, roles, databases, migrations, keys and the
 * demo seed (dev/platform.ts), then each subgraph and the gateway as a child process of its own, through the
 * same entry points a deployment runs (`subgraph-server/main.ts <name>`, `gateway/main.ts`). A child that
 * dies is restarted; Ctrl-C or SIGTERM stops every child, then PostgreSQL. Prints the gateway URL and a
 * ready-to-paste curl per demo district. `--in-process` runs every service in this one process instead.
 */
import '../config/node-version.ts';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { environmentWith, readConfig, subgraphVariable, type PlatformConfig } from '../config/config.ts';
import { rootLogger } from '../config/logger.ts';
import { readRegistry } from '../config/registry.ts';
import { releaseSignalHandlers } from '../database/database.ts';
import { DEV_AUDIENCE, DEV_ISSUER, keyFiles } from './keys.ts';
import { preparePlatform, startPlatform, welcomeText, type PreparedPlatform } from './platform.ts';
import { superviseChildren, type ChildSpec, type Supervisor } from './supervisor.ts';

const GATEWAY_MAIN = fileURLToPath(new URL('../gateway/main.ts', import.meta.url));
const SUBGRAPH_MAIN = fileURLToPath(new URL('../subgraph-server/main.ts', import.meta.url));
/** Loaded before each service's modules, so tracing can hook them (telemetry/register.ts; inert without an OTLP endpoint). */
const TRACING_REGISTER = ['--import', fileURLToPath(new URL('../telemetry/register.ts', import.meta.url))];
/** First start of four Node processes on two busy cores can be slow; a child that is not ready by then fails the start. */
const READY_TIMEOUT_MS = 120_000;

type Env = Record<string, string | undefined>;

/**
 * What each child gets: this environment without the secrets it has no use for (the admin DATABASE_URL,
 * the other services' database URLs, a tenant-context key of the other side), plus its own.
 */
export function childSpecs(prepared: PreparedPlatform, env: Env = environmentWith()): ChildSpec[] {
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

let stopping = false;

/**
 * From here on this process stops the platform itself on SIGINT, SIGTERM or SIGHUP: the services first,
 * then PostgreSQL (whose own exit-on-signal handlers are released), then exit 0. Never hangs on the way out.
 */
function onStopSignal(stop: () => Promise<void>) {
  releaseSignalHandlers();
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    rootLogger.info({ signal }, 'stopping');
    setTimeout(() => {
      console.error('npm start: did not stop within 30 s');
      process.exit(1);
    }, 30_000).unref();
    stop().then(
      () => process.exit(0),
      (error: Error) => {
        console.error(`npm start: stopping failed: ${error.message}`);
        process.exit(1);
      },
    );
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, handler);
}

async function startChildren(config: PlatformConfig): Promise<{ gatewayUrl: string; keys: PreparedPlatform['keys'] }> {
  // The gateway is told where each subgraph listens, so no service may take a random port.
  const randomPorts = [
    ['GATEWAY_PORT', config.gatewayPort] as const,
    ...readRegistry().map((e) => [e.port.env, config.subgraphPorts[e.name]] as const),
  ].filter(([, port]) => port === 0);
  if (randomPorts.length) throw new Error(`a port of 0 works only with --in-process: ${randomPorts.map(([name]) => name).join(', ')}`);
  const prepared = await preparePlatform({ config });
  const supervisor: Supervisor = superviseChildren(childSpecs(prepared), { logger: rootLogger, graceMs: config.shutdownGraceMs });
  onStopSignal(async () => {
    await supervisor.stop();
    await prepared.stop();
  });
  try {
    await supervisor.ready(READY_TIMEOUT_MS);
  } catch (error) {
    if (!stopping) {
      await supervisor.stop();
      await prepared.stop();
    }
    throw error;
  }
  return { gatewayUrl: `http://${config.localHost}:${config.gatewayPort}/graphql`, keys: prepared.keys };
}

async function startInProcess(config: PlatformConfig) {
  const platform = await startPlatform({ config });
  onStopSignal(() => platform.stop());
  return { gatewayUrl: platform.gateway.url, keys: platform.keys };
}

const { values } = parseArgs({ options: { 'in-process': { type: 'boolean', default: false } } });
const config = readConfig();
try {
  const { gatewayUrl, keys } = await (values['in-process'] ? startInProcess(config) : startChildren(config));
  console.log(await welcomeText(gatewayUrl, config, keys));
} catch (error) {
  // A stop signal during start-up ends the start; its handler stops what runs and exits.
  if (stopping) await new Promise(() => {});
  rootLogger.debug({ err: error }, 'start failed');
  console.error(`npm start failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
