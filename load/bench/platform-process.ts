/**
 * The platform in processes of its own, so the load generator never shares the event loop it measures:
 * `node dev/start.ts` as `npm start` runs it (one process per service: the gateway and each subgraph as
 * children of the launcher, which owns PostgreSQL, migrations and the demo seed), or with `--in-process`
 * (every service in the launcher's one process). Ports and folders come from the environment given.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { environmentWith, readConfig, subgraphVariable, type PlatformConfig } from '../../config/config.ts';
import { readRegistry } from '../../config/registry.ts';

const START_SCRIPT = fileURLToPath(new URL('../../dev/start.ts', import.meta.url));

export interface PlatformProcess {
  config: PlatformConfig;
  gatewayUrl: string;
  subgraphUrl(name: string): string;
  /** The launcher's process id (its children are the services and, when embedded, PostgreSQL: process-cpu.ts). */
  pid: number;
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

/** GATEWAY_PORT, every registered subgraph's port variable and every service's metrics port, each set to a free port. */
export async function freeServicePorts(): Promise<Record<string, string>> {
  const ports: Record<string, string> = { GATEWAY_PORT: String(await freePort()), GATEWAY_METRICS_PORT: String(await freePort()) };
  for (const entry of readRegistry()) {
    ports[entry.port.env] = String(await freePort());
    ports[`${subgraphVariable(entry.name)}_METRICS_PORT`] = String(await freePort());
  }
  return ports;
}

type Env = Record<string, string | undefined>;

/** Spawns `node <args>` with `env`, logs to `logFile`, and resolves once `readyUrl` answers 200. */
export async function startChild(
  args: string[],
  env: Env,
  logFile: string,
  readyUrl: string,
): Promise<{ pid: number; stop(): Promise<void> }> {
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
    if (
      await fetch(readyUrl, { signal: AbortSignal.timeout(1000) }).then(
        (r) => r.ok,
        () => false,
      )
    )
      return { pid: child.pid!, stop };
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      const tail = (await readFile(logFile, 'utf8').catch(() => '')).split('\n').slice(-15).join('\n');
      throw new Error(`the platform did not become ready (log ${logFile}):\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

const urlsOf = (config: PlatformConfig) => {
  const host = config.localHost;
  return {
    gatewayUrl: `http://${host}:${config.gatewayPort}/graphql`,
    subgraphUrl: (name: string) => `http://${host}:${config.subgraphPorts[name]}/graphql`,
    ready: (port: number) => `http://${host}:${port}/health/ready`,
  };
};

export interface PlatformProcessOptions {
  /** Every service in the launcher's one process (`npm start -- --in-process`) rather than one process per service. */
  inProcess?: boolean;
  /** Node options for the launcher and every service process (e.g. --cpu-prof), through NODE_OPTIONS. */
  nodeOptions?: string[];
}

/** Starts the platform with `env` (merged over this process's environment) and waits until the gateway is ready. */
export async function startPlatformProcess(env: Env, logFile: string, options: PlatformProcessOptions = {}): Promise<PlatformProcess> {
  const inherited = environmentWith();
  const nodeOptions = [inherited.NODE_OPTIONS, ...(options.nodeOptions ?? [])].filter(Boolean).join(' ');
  const fullEnv = environmentWith({ LOG_LEVEL: 'warn', ...env, ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}) });
  const config = readConfig(fullEnv);
  const urls = urlsOf(config);
  const { pid, stop } = await startChild(
    [START_SCRIPT, ...(options.inProcess ? ['--in-process'] : [])],
    fullEnv,
    logFile,
    urls.ready(config.gatewayPort),
  );
  return { config, gatewayUrl: urls.gatewayUrl, subgraphUrl: urls.subgraphUrl, pid, stop };
}
