/**
 * The platform in its own process (`node gateway/start.ts`), as it runs in production: the load generator
 * must not share the event loop it measures. Ports and folders come from the environment given.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { readConfig, type PlatformConfig } from '../../gateway/config.ts';

const START_SCRIPT = fileURLToPath(new URL('../../gateway/start.ts', import.meta.url));

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

/** Starts the platform with `env` (merged over this process's environment) and waits until the gateway is ready. */
export async function startPlatformProcess(env: Record<string, string | undefined>, logFile: string, extraNodeArgs: string[] = []): Promise<PlatformProcess> {
  const fullEnv = { ...process.env, LOG_LEVEL: 'warn', ...env };
  const config = readConfig(fullEnv);
  const host = config.host === '0.0.0.0' ? '127.0.0.1' : config.host;
  const log = createWriteStream(logFile);
  const child = spawn(process.execPath, [...extraNodeArgs, START_SCRIPT], { env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const gatewayUrl = `http://${host}:${config.gatewayPort}/graphql`;
  const deadline = Date.now() + 180_000;
  for (;;) {
    const ready = await fetch(new URL('/health/ready', gatewayUrl), { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false);
    if (ready) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGTERM');
      const tail = (await readFile(logFile, 'utf8').catch(() => '')).split('\n').slice(-15).join('\n');
      throw new Error(`the platform did not become ready (log ${logFile}):\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return {
    config,
    gatewayUrl,
    subgraphUrl: (name) => `http://${host}:${config.subgraphPorts[name]}/graphql`,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      log.end();
    },
  };
}
