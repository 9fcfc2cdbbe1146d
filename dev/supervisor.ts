/**
 * `npm start`'s child processes: one per service, each through its own entry point. Every line a child
 * prints is prefixed with its name; a child that dies after it was once ready is restarted with a growing
 * delay; a child that dies before it was ever ready fails the start. Each child has an IPC channel, whose
 * end tells it that the launcher is gone (http/lifecycle.ts), and its own process group, so a Ctrl-C
 * reaches the launcher alone, which then stops the gateway first and the subgraphs after it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';

export interface ChildSpec {
  name: string;
  /** Arguments to node: the entry point and its own arguments. */
  args: string[];
  env: Record<string, string | undefined>;
  /** Answers 200 once the child can serve. */
  readyUrl: string;
}

export interface SupervisorOptions {
  logger: Logger;
  /** Where prefixed child lines go (stdout by default). */
  write?: (line: string) => void;
  /** How long a stopping child may drain before it is killed. */
  graceMs: number;
  /** First restart delay; it doubles with each restart in a row, up to 30 s. */
  restartDelayMs?: number;
}

export interface Supervisor {
  /** Resolves when every child answers ready; rejects when one exits first or the deadline passes. */
  ready(timeoutMs: number): Promise<void>;
  /** The pid of a child's current process. */
  pid(name: string): number | undefined;
  /** Stops every child, the last one first; resolves when all have exited. */
  stop(): Promise<void>;
}

const MAX_RESTART_DELAY_MS = 30_000;
/** A child that ran this long before dying starts again after the first delay, not a longer one. */
const STABLE_AFTER_MS = 60_000;
/** Lines kept per child to explain a failed start. */
const TAIL_LINES = 20;

interface Child {
  spec: ChildSpec;
  process?: ChildProcess;
  exited?: Promise<void>;
  startedAt: number;
  everReady: boolean;
  restartsInARow: number;
  restartTimer?: NodeJS.Timeout;
  tail: string[];
}

export function superviseChildren(specs: ChildSpec[], options: SupervisorOptions): Supervisor {
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const width = Math.max(...specs.map((s) => s.name.length));
  const children = specs.map((spec): Child => ({ spec, startedAt: 0, everReady: false, restartsInARow: 0, tail: [] }));
  let stopping = false;
  let failStart: ((error: Error) => void) | undefined;

  const launch = (child: Child) => {
    const { spec } = child;
    const proc = spawn(process.execPath, spec.args, { env: spec.env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'], detached: true });
    child.process = proc;
    child.startedAt = Date.now();
    for (const stream of [proc.stdout!, proc.stderr!]) {
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
        child.tail.push(line);
        if (child.tail.length > TAIL_LINES) child.tail.shift();
        write(`${spec.name.padEnd(width)} | ${line}`);
      });
    }
    child.exited = new Promise((resolve) =>
      proc.once('exit', (code, signal) => {
        resolve();
        if (stopping) return;
        if (!child.everReady) {
          failStart?.(new Error(`${spec.name} exited (${signal ?? `code ${code}`}) before it was ready:\n${child.tail.join('\n')}`));
          return;
        }
        const ranMs = Date.now() - child.startedAt;
        child.restartsInARow = ranMs > STABLE_AFTER_MS ? 0 : child.restartsInARow + 1;
        const delayMs = Math.min(MAX_RESTART_DELAY_MS, (options.restartDelayMs ?? 1000) * 2 ** Math.max(0, child.restartsInARow - 1));
        options.logger.warn({ service: spec.name, code, signal, ranMs, restartInMs: delayMs }, `${spec.name} exited; restarting`);
        child.restartTimer = setTimeout(() => {
          child.restartTimer = undefined;
          if (!stopping) launch(child);
        }, delayMs);
      }),
    );
    proc.once('error', (error) => options.logger.error({ service: spec.name, err: error }, `${spec.name} could not be started`));
    // The channel carries nothing; it only has to close when this process dies. Unreferenced, it keeps no one alive.
    proc.channel?.unref();
  };

  children.forEach(launch);

  const isReady = (url: string) =>
    fetch(url, { signal: AbortSignal.timeout(2000) }).then(
      (r) => r.ok,
      () => false,
    );

  return {
    async ready(timeoutMs) {
      const failed = new Promise<never>((_, reject) => (failStart = reject));
      const deadline = Date.now() + timeoutMs;
      const allReady = (async () => {
        for (const child of children) {
          while (!(await isReady(child.spec.readyUrl))) {
            if (stopping) throw new Error('stopped while starting');
            if (Date.now() > deadline)
              throw new Error(
                `${child.spec.name} was not ready within ${timeoutMs} ms (${child.spec.readyUrl}):\n${child.tail.join('\n')}`,
              );
            await new Promise((r) => setTimeout(r, 250));
          }
          child.everReady = true;
        }
      })();
      try {
        await Promise.race([allReady, failed]);
      } finally {
        failStart = undefined;
        allReady.catch(() => {});
      }
    },
    pid: (name) => children.find((c) => c.spec.name === name)?.process?.pid,
    async stop() {
      stopping = true;
      for (const child of [...children].reverse()) {
        clearTimeout(child.restartTimer);
        const proc = child.process;
        if (!proc || proc.exitCode !== null || proc.signalCode !== null) continue;
        proc.kill('SIGTERM');
        const killer = setTimeout(() => {
          options.logger.warn({ service: child.spec.name }, `${child.spec.name} did not stop within its grace period; killing it`);
          proc.kill('SIGKILL');
        }, options.graceMs + 5000);
        await child.exited;
        clearTimeout(killer);
      }
    },
  };
}
