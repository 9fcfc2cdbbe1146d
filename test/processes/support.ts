/** Real processes for the process tests: spawn an entry point, read its lines, wait for conditions with deadlines. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { graphqlErrorCode } from '../../load/scenarios/scenario.ts';
import { readRegistry } from '../../config/registry.ts';
import { dropServiceDatabases } from '../../database/database.ts';

export const projectFile = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url));
export { freePort } from '../../load/bench/platform-process.ts';

export { waitFor } from '../support/wait.ts';
import { waitFor } from '../support/wait.ts';

export interface NodeProcess {
  child: ChildProcess;
  pid: number;
  /** Every line it printed so far, stdout and stderr. */
  lines: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The first line matching `pattern`, waiting for it up to `timeoutMs` (fails at once if the process exits). */
  line(pattern: RegExp, timeoutMs: number): Promise<string>;
  /** Sends `signal` and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const spawned = new Set<ChildProcess>();

/** `node <args>` with exactly `env` (plus PATH), from the project root. */
export function spawnNode(args: string[], env: Record<string, string>): NodeProcess {
  const child = spawn(process.execPath, args, {
    cwd: projectFile(''),
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  spawned.add(child);
  const lines: string[] = [];
  for (const stream of [child.stdout, child.stderr])
    createInterface({ input: stream, crlfDelay: Infinity }).on('line', (l) => lines.push(l));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      spawned.delete(child);
      resolve({ code, signal });
    }),
  );
  const hasExited = () => child.exitCode !== null || child.signalCode !== null;
  return {
    child,
    pid: child.pid!,
    lines,
    exited,
    line: (pattern, timeoutMs) =>
      waitFor(
        `a line matching ${pattern} from ${args.join(' ')}`,
        () => {
          const found = lines.find((l) => pattern.test(l));
          if (!found && hasExited())
            throw new Error(
              `${args.join(' ')} exited (${child.exitCode ?? child.signalCode}) before printing ${pattern}:\n${lines.slice(-20).join('\n')}`,
            );
          return found;
        },
        { timeoutMs, intervalMs: 50 },
      ),
    async stop(signal = 'SIGTERM') {
      if (!hasExited()) child.kill(signal);
      return exited;
    },
  };
}

/** Kills what a test left running (after a failure), by pid. */
export function killSpawned(): void {
  for (const child of spawned) child.kill('SIGKILL');
}

export interface ProcessInfo {
  pid: number;
  parentPid: number;
  command: string;
}

/**
 * Live processes whose environment holds `name=value` (a test's unique DATA_DIR marks everything one
 * `npm start` started: the launcher's children and PostgreSQL inherit it). Zombies have no environment.
 */
export function processesWithEnvironment(name: string, value: string): ProcessInfo[] {
  const wanted = `${name}=${value}`;
  const found: ProcessInfo[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (!readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0').includes(wanted)) continue;
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const parentPid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      found.push({ pid: Number(entry), parentPid, command: readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim() });
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

/** Drops the roles and databases `npm start` created under `prefix` on a shared server. */
export const dropPrefixedDatabases = (adminUrl: string, prefix: string) => dropServiceDatabases(adminUrl, prefix, readRegistry());

/** A POST of one GraphQL operation. */
export async function postGraphQL(url: string, token: string, query: string, variables?: unknown): Promise<{ status: number; body: any }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: response.status, body: await response.json() };
}

export interface LoadOutcome {
  /** Milliseconds since the load started, when the request was sent. */
  sentAtMs: number;
  /** null on success; otherwise http_<status>, graphql_<CODE> or network_<code>. */
  error: string | null;
  operation: string;
}

/**
 * Open-model load at `rate` per second (request i leaves at start + i / rate, answered or not) until `until()`
 * says so; resolves with every outcome once all have answered. `next` picks each request's operation.
 */
export async function steadyLoad(options: {
  url: string;
  token: string;
  rate: number;
  next: () => { operation: string; query: string; variables?: unknown };
  until: () => boolean;
}): Promise<LoadOutcome[]> {
  const target = new URL(options.url);
  const pool = new Pool(target.origin, { connections: 64, keepAliveTimeout: 30_000 });
  const outcomes: LoadOutcome[] = [];
  const inFlight = new Set<Promise<void>>();
  const startedAt = performance.now();
  const send = async (sentAtMs: number, operation: string, body: string) => {
    let error: string | null;
    try {
      const response = await pool.request({
        path: target.pathname,
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${options.token}` },
        body,
        headersTimeout: 15_000,
        bodyTimeout: 15_000,
      });
      const text = await response.body.text();
      error = response.statusCode >= 400 ? `http_${response.statusCode}` : graphqlErrorCode(text) && `graphql_${graphqlErrorCode(text)}`;
    } catch (caught) {
      error = `network_${(caught as { code?: string }).code ?? 'error'}`;
    }
    outcomes.push({ sentAtMs, error, operation });
  };
  for (let sent = 0; !options.until(); sent++) {
    const dueAt = startedAt + (sent * 1000) / options.rate;
    const wait = dueAt - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const { operation, query, variables } = options.next();
    const flight = send(dueAt - startedAt, operation, JSON.stringify({ query, variables })).finally(() => inFlight.delete(flight));
    inFlight.add(flight);
  }
  await Promise.all(inFlight);
  await pool.close();
  return outcomes;
}
