/**
 * CPU time of the platform's processes, read from /proc (utime + stime of each process), so a bench figure can
 * say how many milliseconds of CPU each process spent per request over a measured window. Linux only.
 */
import { execFileSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import type pg from 'pg';

const TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

interface ProcessStat {
  pid: number;
  ppid: number;
  /** utime + stime so far, in ms. */
  cpuMs: number;
  /** cutime + cstime: what its children that exited and were reaped used, in ms. */
  reapedChildrenMs: number;
}

/** undefined once the process has exited. */
async function statOf(pid: number): Promise<ProcessStat | undefined> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (!text) return undefined;
  // The command name (field 2) may hold spaces and parentheses: the fixed fields follow its last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15, cutime 16, cstime 17.
  const ms = (first: number) => ((Number(fields[first]) + Number(fields[first + 1])) * 1000) / TICKS_PER_SECOND;
  return { pid, ppid: Number(fields[1]), cpuMs: ms(11), reapedChildrenMs: ms(13) };
}

const commandLineOf = async (pid: number) =>
  (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').filter(Boolean).join(' ');

/** `root` and every process below it. */
export async function processTree(root: number): Promise<number[]> {
  const stats = await Promise.all((await readdir('/proc')).filter((name) => /^\d+$/.test(name)).map((name) => statOf(Number(name))));
  const children = new Map<number, number[]>();
  for (const stat of stats) if (stat) children.set(stat.ppid, [...(children.get(stat.ppid) ?? []), stat.pid]);
  const tree: number[] = [];
  for (const queue = [root]; queue.length;) {
    const pid = queue.shift()!;
    tree.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return tree;
}

/** Named groups of processes whose CPU is measured together (e.g. `postgres`: the postmaster and every backend). */
export type ProcessGroups = Record<string, number[]>;

/**
 * The platform's processes by role: `gateway`, each subgraph by name (`npm start` runs each as
 * `subgraph-server/main.ts <name>`), `postgres` when the server is embedded (a child of the launcher), and
 * `launcher` for the rest (with `--in-process`, every service).
 */
export async function platformProcessGroups(launcherPid: number): Promise<ProcessGroups> {
  const groups: ProcessGroups = {};
  const add = (group: string, pid: number) => (groups[group] ??= []).push(pid);
  for (const pid of await processTree(launcherPid)) {
    const command = await commandLineOf(pid);
    const subgraph = /subgraph-server\/main\.ts (\S+)/.exec(command);
    if (subgraph) add(subgraph[1]!, pid);
    else if (/gateway\/main\.ts/.test(command)) add('gateway', pid);
    else if (/(^|\/)postgres\b/.test(command.split(' ')[0] ?? '') || /^postgres:/.test(command)) add('postgres', pid);
    else add('launcher', pid);
  }
  return groups;
}

/**
 * Every process of the PostgreSQL server `client` is connected to (run on this machine): the postmaster, found as
 * the parent of the client's backend, and everything below it.
 */
export async function postgresProcesses(client: pg.Client): Promise<number[]> {
  const { rows } = await client.query<{ pid: number }>('select pg_backend_pid() as pid');
  const backend = await statOf(rows[0]!.pid);
  if (!backend) throw new Error('the PostgreSQL server does not run on this machine: its CPU cannot be read');
  return processTree(backend.ppid);
}

/** CPU ms each process of each group has used so far. */
async function cpuMsByProcess(groups: ProcessGroups): Promise<Map<number, { group: string; cpuMs: number }>> {
  const result = new Map<number, { group: string; cpuMs: number }>();
  for (const [group, pids] of Object.entries(groups))
    for (const stat of await Promise.all(pids.map(statOf))) if (stat) result.set(stat.pid, { group, cpuMs: stat.cpuMs });
  return result;
}

/**
 * Runs `work` and returns each group's CPU ms per unit of work over it (`units`: e.g. the requests it answered).
 * `listGroups` runs before and after, so a process started during the window (a new PostgreSQL backend) counts
 * whole; one that exited during it is lost (pooled services keep theirs).
 */
export async function cpuPerUnit(
  listGroups: () => Promise<ProcessGroups>,
  work: () => Promise<number>,
): Promise<{ units: number; cpuMsPerUnit: Record<string, number>; cpuMs: Record<string, number> }> {
  const before = await cpuMsByProcess(await listGroups());
  const units = await work();
  const after = await cpuMsByProcess(await listGroups());
  const cpuMs: Record<string, number> = {};
  for (const [pid, { group, cpuMs: total }] of after) cpuMs[group] = (cpuMs[group] ?? 0) + total - (before.get(pid)?.cpuMs ?? 0);
  const cpuMsPerUnit = Object.fromEntries(
    Object.entries(cpuMs).map(([group, ms]) => [group, units > 0 ? Math.round((ms / units) * 1000) / 1000 : NaN]),
  );
  return { units, cpuMsPerUnit, cpuMs };
}

/**
 * CPU ms the PostgreSQL server `client` is connected to has used so far: every live process below the
 * postmaster, plus the postmaster's cutime + cstime (its children that exited and were reaped, e.g. the
 * backend of a connection closed in between). The difference of two readings is the server's CPU over the
 * window, short-lived connections included.
 */
export async function postgresServerCpuMs(client: pg.Client): Promise<number> {
  const live = await Promise.all((await postgresProcesses(client)).map(statOf));
  return (live[0]?.reapedChildrenMs ?? 0) + live.reduce((sum, stat) => sum + (stat?.cpuMs ?? 0), 0);
}
