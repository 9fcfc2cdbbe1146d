/**
 * Bench part 6: CPU ms per request of every process over a fixed load run — the gateway, each subgraph, PostgreSQL
 * (every process of the server) and the load generator itself — and the goals the hot-path issue sets for them.
 */
import { readRegistry } from '../../config/registry.ts';
import type { RunReport } from '../runner/report.ts';
import { runScenario } from '../runner/run.ts';
import type { Scenario, TokensFile } from '../scenarios/scenario.ts';
import { cpuPerUnit, platformProcessGroups, type ProcessGroups } from './process-cpu.ts';
import { spread, type Spread } from './stats.ts';

/** The bench's own process, sending the load (measured with process.cpuUsage, not /proc). */
export const GENERATOR = 'generator';

/**
 * The platform's process groups (process-cpu.ts), with `postgres` from `postgresPids` when the server is not a
 * child of the launcher (DATABASE_URL naming a server on this machine).
 */
export function platformCpuGroups(launcherPid: number, postgresPids?: () => Promise<number[]>): () => Promise<ProcessGroups> {
  return async () => {
    const groups = await platformProcessGroups(launcherPid);
    if (postgresPids) groups.postgres = await postgresPids();
    return groups;
  };
}

/** Requests that got an answer (an HTTP status), i.e. whose cost the platform paid in full. */
export const answeredRequests = (report: RunReport) =>
  report.requests -
  Object.entries(report.errors.byKind).reduce((n, [kind, count]) => (/^(timeout|network_)/.test(kind) ? n + count : n), 0);

export interface RunCpu {
  report: RunReport;
  answered: number;
  /** Wall-clock ms of the measured window. */
  wallMs: number;
  /** By group (and `generator`): CPU ms over the window, per answered request, and cores used on average. */
  cpuMs: Record<string, number>;
  cpuMsPerRequest: Record<string, number>;
  cores: Record<string, number>;
}

const round = (value: number, digits = 3) => Math.round(value * 10 ** digits) / 10 ** digits;

/**
 * Runs `run` (one load run) and measures the CPU each process group and this process spent on it. Warm up
 * before, not inside `run`: everything in the window counts, but only the recorded requests divide it.
 */
export async function measureRunCpu(listGroups: () => Promise<ProcessGroups>, run: () => Promise<RunReport>): Promise<RunCpu> {
  let report: RunReport | undefined;
  let generatorMs = 0;
  const startedAt = performance.now();
  const measured = await cpuPerUnit(listGroups, async () => {
    const before = process.cpuUsage();
    report = await run();
    const used = process.cpuUsage(before);
    generatorMs = (used.user + used.system) / 1000;
    return answeredRequests(report);
  });
  const wallMs = performance.now() - startedAt;
  const cpuMs = { ...measured.cpuMs, [GENERATOR]: generatorMs };
  return {
    report: report!,
    answered: measured.units,
    wallMs: round(wallMs, 0),
    cpuMs: Object.fromEntries(Object.entries(cpuMs).map(([group, ms]) => [group, round(ms, 1)])),
    cpuMsPerRequest: Object.fromEntries(
      Object.entries(cpuMs).map(([group, ms]) => [group, measured.units > 0 ? round(ms / measured.units) : NaN]),
    ),
    cores: Object.fromEntries(Object.entries(cpuMs).map(([group, ms]) => [group, round(ms / wallMs, 2)])),
  };
}

/** Each group's CPU ms per request across runs (median, min, max), plus `platform`: every group but the generator. */
export function cpuSpreads(runs: Pick<RunCpu, 'cpuMsPerRequest'>[]): Record<string, Spread> {
  const groups = [...new Set(runs.flatMap((r) => Object.keys(r.cpuMsPerRequest)))];
  const total = (r: Pick<RunCpu, 'cpuMsPerRequest'>) =>
    Object.entries(r.cpuMsPerRequest).reduce((sum, [group, ms]) => (group === GENERATOR ? sum : sum + ms), 0);
  return Object.fromEntries([
    ...groups.map((group) => [group, spread(runs.map((r) => r.cpuMsPerRequest[group] ?? 0))] as const),
    ['platform', spread(runs.map(total))] as const,
  ]);
}

/**
 * The arrival rate at which the platform and the generator together would keep every core busy: the ceiling
 * that capacity (part 8) approaches on an otherwise idle machine, whatever the latency.
 */
export const cpuCeilingRate = (perRequest: Record<string, Spread>, cores: number) => {
  const ms = (perRequest.platform?.median ?? 0) + (perRequest[GENERATOR]?.median ?? 0);
  return ms > 0 ? Math.floor((cores * 1000) / ms) : Infinity;
};

/** The issue's goals, CPU ms per request (mixed scenario, 100 req/s, one process per service). */
export const CPU_GOALS_MS: Readonly<Record<string, number>> = { gateway: 1.0, students: 0.8, staff: 0.5, districts: 0.5 };
/** Each subgraph within this factor of PostgreSQL's own CPU per request. */
export const SUBGRAPH_TO_POSTGRES_GOAL = 1.5;

export interface Check {
  name: string;
  goal: string;
  value: string;
  met: boolean;
}

/**
 * Part 6's checks from each group's median CPU ms per request: the gateway and each registered subgraph against
 * its goal, and each subgraph against PostgreSQL's. A service without its own process (`--in-process`) fails
 * its checks: the figures are stated for one process per service.
 */
export function cpuChecks(medians: Record<string, number>, subgraphs = readRegistry().map((s) => s.name)): Check[] {
  const ms = (group: string) => (medians[group] === undefined ? 'no process of its own' : `${medians[group]} ms`);
  const checks: Check[] = [];
  for (const group of ['gateway', ...subgraphs]) {
    const goal = CPU_GOALS_MS[group];
    if (goal !== undefined)
      checks.push({
        name: `${group} CPU per request`,
        goal: `<= ${goal.toFixed(1)} ms`,
        value: ms(group),
        met: (medians[group] ?? Infinity) <= goal,
      });
  }
  const postgres = medians.postgres;
  for (const group of subgraphs) {
    const ratio = postgres && medians[group] !== undefined ? round(medians[group] / postgres, 2) : undefined;
    checks.push({
      name: `${group} / PostgreSQL CPU per request`,
      goal: `<= ${SUBGRAPH_TO_POSTGRES_GOAL}x`,
      value: ratio === undefined ? `${ms(group)} vs PostgreSQL ${postgres ?? '?'} ms` : `${ratio}x (${ms(group)} vs ${postgres} ms)`,
      met: ratio !== undefined && ratio <= SUBGRAPH_TO_POSTGRES_GOAL,
    });
  }
  return checks;
}

const order = (group: string) =>
  group === 'gateway' ? 0 : group === 'postgres' ? 2 : group === 'launcher' ? 3 : group === 'platform' ? 4 : group === GENERATOR ? 5 : 1;
const inOrder = <T>(byGroup: Record<string, T>) => Object.entries(byGroup).sort(([a], [b]) => order(a) - order(b) || a.localeCompare(b));

/** `gateway 0.91, students 0.72, …` in a fixed order: the gateway, subgraphs, PostgreSQL, the rest, the generator last. */
export function formatCpu(perGroup: Record<string, number>, unit = ' ms'): string {
  return inOrder(perGroup)
    .map(([group, value]) => `${group} ${value}${unit}`)
    .join(', ');
}

/** `gateway 0.91 (0.88–0.97), …`: medians with min–max across runs, in formatCpu's order. */
export function formatCpuSpreads(perGroup: Record<string, Spread>): string {
  return inOrder(perGroup)
    .map(([group, s]) => `${group} ${s.median}${s.runs.length > 1 ? ` (${s.min}–${s.max})` : ''}`)
    .join(', ');
}

/** One run's line: requests, errors, latency, the generator's lag and each process's CPU ms per request. */
export function formatRunCpu(run: RunCpu): string {
  const { errors, latencyMs, schedulerLagMs } = run.report;
  const kinds = Object.keys(errors.byKind).length ? ` ${JSON.stringify(errors.byKind)}` : '';
  return `${run.answered} answered, errors ${errors.total}${kinds}, p95 ${latencyMs.p95} ms, generator lag p99 ${schedulerLagMs.p99} ms; CPU ms/request ${formatCpu(run.cpuMsPerRequest, '')}`;
}

export interface CpuPerProcess {
  runs: (RunCpu & { loadAfter: string })[];
  /** By group: CPU ms per request across runs. */
  cpu: Record<string, Spread>;
  checks: Check[];
  /** Errors in all runs: a 429 costs far less than an answer, and a timed-out request's work counts without the request. */
  errors: number;
}

/** Part 6: `runs` runs of `scenario` after 10 s of warm-up (outside the CPU window), and the goals checked. */
export async function measureCpuPerProcess(options: {
  scenario: Scenario;
  tokens: TokensFile;
  runs: number;
  listGroups: () => Promise<ProcessGroups>;
  load: () => string;
  onRun?: (run: RunCpu, index: number) => void;
}): Promise<CpuPerProcess> {
  await runScenario({ ...options.scenario, durationSeconds: 10 }, options.tokens);
  const runs: CpuPerProcess['runs'] = [];
  for (let index = 0; index < options.runs; index++) {
    const run = await measureRunCpu(options.listGroups, () => runScenario(options.scenario, options.tokens));
    runs.push({ ...run, loadAfter: options.load() });
    options.onRun?.(run, index);
  }
  const cpu = cpuSpreads(runs);
  const checks = cpuChecks(Object.fromEntries(Object.entries(cpu).map(([group, s]) => [group, s.median])));
  return { runs, cpu, checks, errors: runs.reduce((sum, r) => sum + r.report.errors.total, 0) };
}

/** What bench.json keeps of each run. */
export const cpuRunDetails = (run: CpuPerProcess['runs'][number]) => ({
  loadAfter: run.loadAfter,
  answered: run.answered,
  wallMs: run.wallMs,
  cpuMs: run.cpuMs,
  cpuMsPerRequest: run.cpuMsPerRequest,
  cores: run.cores,
  latencyMs: run.report.latencyMs,
  errors: run.report.errors,
  achievedRate: run.report.achievedRate,
  schedulerLagMs: run.report.schedulerLagMs,
});
