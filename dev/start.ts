/**
 * `npm start`: the whole platform in one terminal. PostgreSQL, roles, databases, migrations, keys and the
 * demo seed (dev/platform.ts), then each subgraph and the gateway as a child process of its own, through the
 * same entry points a deployment runs (`subgraph-server/main.ts <name>`, `gateway/main.ts`). A child that
 * dies is restarted; Ctrl-C or SIGTERM stops every child, then PostgreSQL. Prints the gateway URL and a
 * ready-to-paste curl per demo district. `--in-process` runs every service in this one process instead.
 */
import '../config/node-version.ts';
import { parseArgs } from 'node:util';
import { readConfig, type PlatformConfig } from '../config/config.ts';
import { rootLogger } from '../config/logger.ts';
import { readRegistry } from '../config/registry.ts';
import { releaseSignalHandlers } from '../database/database.ts';
import { preparePlatform, startPlatform, welcomeText, type PreparedPlatform } from './platform.ts';
import { childSpecs } from './service-processes.ts';
import { superviseChildren, type Supervisor } from './supervisor.ts';

/** First start of four Node processes on two busy cores can be slow; a child that is not ready by then fails the start. */
const READY_TIMEOUT_MS = 120_000;

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
