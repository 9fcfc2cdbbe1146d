/**
 * The platform in processes of its own, so the load generator never shares the event loop it measures:
 * - single: `node dev/start.ts`, everything in one process, as `npm start` runs it;
 * - split: that process still owns PostgreSQL, migrations and the demo seed, and the gateway and each
 *   subgraph also run in a process of their own on other ports (load/bench/service.ts), as deployed; the
 *   runners then talk to the split gateway.
 * Ports and folders come from the environment given.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { readConfig, type PlatformConfig } from '../../config/config.ts';
import { readRegistry } from '../../config/registry.ts';

const START_SCRIPT = fileURLToPath(new URL('../../dev/start.ts', import.meta.url));
const SERVICE_SCRIPT = fileURLToPath(new URL('./service.ts', import.meta.url));

export interface PlatformProcess {
  config: PlatformConfig;
  gatewayUrl: string;
  subgraphUrl(name: string): string;
  stop(): Promise<void>;
}

export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.once('error', reject);
  });

/** GATEWAY_PORT and every registered subgraph's port variable, each set to a free port. */
export async function freeServicePorts(): Promise<Record<string, string>> {
  const ports: Record<string, string> = { GATEWAY_PORT: String(await freePort()) };
  for (const entry of readRegistry()) ports[entry.port.env] = String(await freePort());
  return ports;
}

type Env = Record<string, string | undefined>;

/** Spawns `node <args>` with `env`, logs to `logFile`, and resolves once `readyUrl` answers 200. */
async function startChild(args: string[], env: Env, logFile: string, readyUrl: string): Promise<() => Promise<void>> {
  const log = createWriteStream(logFile);
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
    log.end();
  };
  const deadline = Date.now() + 180_000;
  for (;;) {
    if (await fetch(readyUrl, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false)) return stop;
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      const tail = (await readFile(logFile, 'utf8').catch(() => '')).split('\n').slice(-15).join('\n');
      throw new Error(`${args.at(-1)} did not become ready (log ${logFile}):\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

const urlsOf = (config: PlatformConfig) => {
  const host = config.host === '0.0.0.0' ? '127.0.0.1' : config.host;
  return {
    gatewayUrl: `http://${host}:${config.gatewayPort}/graphql`,
    subgraphUrl: (name: string) => `http://${host}:${config.subgraphPorts[name]}/graphql`,
    ready: (port: number) => `http://${host}:${port}/health/ready`,
  };
};

/** Starts the platform with `env` (merged over this process's environment) and waits until the gateway is ready. */
export async function startPlatformProcess(env: Env, logFile: string, extraNodeArgs: string[] = []): Promise<PlatformProcess> {
  const fullEnv = { ...process.env, LOG_LEVEL: 'warn', ...env };
  const config = readConfig(fullEnv);
  const urls = urlsOf(config);
  const stop = await startChild([...extraNodeArgs, START_SCRIPT], fullEnv, logFile, urls.ready(config.gatewayPort));
  return { config, gatewayUrl: urls.gatewayUrl, subgraphUrl: urls.subgraphUrl, stop };
}

/** The split topology: the single-process platform (for PostgreSQL), then one process per service on free ports. */
export async function startSplitPlatform(env: Env, logPrefix: string, extraNodeArgs: string[] = []): Promise<PlatformProcess> {
  const owner = await startPlatformProcess(env, `${logPrefix}-platform.log`, []);
  const stops: (() => Promise<void>)[] = [owner.stop];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop();
  };
  try {
    const splitEnv = { ...process.env, LOG_LEVEL: 'warn', ...env, ...(await freeServicePorts()) };
    const config = readConfig(splitEnv);
    const urls = urlsOf(config);
    for (const { name } of readRegistry()) {
      stops.push(await startChild([...extraNodeArgs, SERVICE_SCRIPT, name], splitEnv, `${logPrefix}-${name}.log`, urls.ready(config.subgraphPorts[name]!)));
    }
    stops.push(await startChild([...extraNodeArgs, SERVICE_SCRIPT, 'gateway'], splitEnv, `${logPrefix}-gateway.log`, urls.ready(config.gatewayPort)));
    return { config, gatewayUrl: urls.gatewayUrl, subgraphUrl: urls.subgraphUrl, stop: stopAll };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
