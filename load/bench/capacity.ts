/**
 * Bench part 8: capacity. One run steps the open-model arrival rate up (e.g. 50, 100, 150, … req/s, a fixed
 * number of seconds each, after one short warm-up) until a step fails or the last rate is reached; the capacity
 * is the highest rate of the unbroken run of passing steps. A step passes with p99 within the limit, no errors
 * (a 429 from the per-district concurrency limit counts as one) and the generator having offered at least
 * MIN_ACHIEVED_SHARE of the rate (a generator that falls behind measures a lower rate than it claims). On a
 * shared machine a burst from another process can fail one step at a rate the platform sustains: a failed step
 * is run again up to `retries` times, and the last attempt at each rate decides it.
 */
import type { Scenario, TokensFile } from '../scenarios/scenario.ts';
import { runScenario } from '../runner/run.ts';
import type { ProcessGroups } from './process-cpu.ts';
import { formatCpu, measureRunCpu } from './cpu-per-process.ts';

export const CAPACITY_P99_LIMIT_MS = 50;
export const CAPACITY_GOAL_RATE = 300;
export const MIN_ACHIEVED_SHARE = 0.95;

export interface CapacityStep {
  rate: number;
  achievedRate: number;
  requests: number;
  errors: number;
  errorsByKind: Record<string, number>;
  latencyMs: { p50: number; p95: number; p99: number; max: number };
  schedulerLagMs: { p99: number; max: number };
  cpuMsPerRequest: Record<string, number>;
  /** Average cores each process group used over the step. */
  cores: Record<string, number>;
  load: string;
  passed: boolean;
  /** Why the step failed (empty when it passed). */
  reasons: string[];
}

export type StepResult = Pick<CapacityStep, 'rate' | 'achievedRate' | 'errors' | 'latencyMs'>;

/** Why a step fails its limits, if it does. */
export function stepFailures(step: StepResult, p99LimitMs = CAPACITY_P99_LIMIT_MS): string[] {
  const reasons: string[] = [];
  if (step.latencyMs.p99 > p99LimitMs) reasons.push(`p99 ${step.latencyMs.p99} ms > ${p99LimitMs} ms`);
  if (step.errors > 0) reasons.push(`${step.errors} errors`);
  if (step.achievedRate < step.rate * MIN_ACHIEVED_SHARE) reasons.push(`offered ${step.achievedRate}/s of ${step.rate}/s`);
  return reasons;
}

/** The rates of one run: start, start + step, … up to max. */
export function stepRates(start: number, step: number, max: number): number[] {
  const rates: number[] = [];
  for (let rate = start; rate <= max; rate += step) rates.push(rate);
  return rates;
}

/** The attempt that decides each rate (the last one), in order of rate. */
export function decisiveSteps<T extends Pick<CapacityStep, 'rate'>>(steps: T[]): T[] {
  const last = new Map<number, T>();
  for (const step of steps) last.set(step.rate, step);
  return [...last.values()].sort((a, b) => a.rate - b.rate);
}

/**
 * The sustained rate: the highest rate of the passing steps below the first failing one, in order of rate
 * (a pass above a failure is noise, not capacity), each rate decided by its last attempt; 0 when the lowest
 * step fails.
 */
export function sustainedRate(steps: Pick<CapacityStep, 'rate' | 'passed'>[]): number {
  let sustained = 0;
  for (const step of decisiveSteps(steps)) {
    if (!step.passed) break;
    sustained = step.rate;
  }
  return sustained;
}

export interface CapacityOptions {
  scenario: Scenario;
  tokens: TokensFile;
  rates: number[];
  stepSeconds: number;
  warmupSeconds: number;
  /** Attempts again at a failed step's rate before stopping. */
  retries: number;
  p99LimitMs?: number;
  listGroups: () => Promise<ProcessGroups>;
  load: () => string;
  onStep?: (step: CapacityStep) => void;
}

export interface Capacity {
  /** Every attempt, in the order run. */
  steps: CapacityStep[];
  /** The attempt that decided each rate, in order of rate (what the chart draws). */
  decisive: CapacityStep[];
  sustained: number;
  /** The decisive step at the sustained rate, and the first failed one. */
  atSustained?: CapacityStep;
  failed?: CapacityStep;
}

/** One step's line: latency, errors, the generator's lag, each process's cores and the load. */
export const formatStep = (s: CapacityStep) =>
  `${s.passed ? 'pass' : 'FAIL'} ${s.rate}/s: achieved ${s.achievedRate}/s, p50/p95/p99 ${s.latencyMs.p50}/${s.latencyMs.p95}/${s.latencyMs.p99} ms, errors ${s.errors}${Object.keys(s.errorsByKind).length ? ` ${JSON.stringify(s.errorsByKind)}` : ''}, generator lag p99 ${s.schedulerLagMs.p99} ms; cores ${formatCpu(s.cores, '')} (load ${s.load})${s.passed ? '' : `: ${s.reasons.join(', ')}`}`;

/** Steps through `rates` until one fails `retries + 1` times; warms up once, at the first rate. */
export async function measureCapacity(options: CapacityOptions): Promise<Capacity> {
  const steps: CapacityStep[] = [];
  if (options.warmupSeconds > 0 && options.rates.length)
    await runScenario({ ...options.scenario, rate: options.rates[0]!, durationSeconds: options.warmupSeconds }, options.tokens);
  for (let index = 0, attempt = 0; index < options.rates.length;) {
    const rate = options.rates[index]!;
    const scenario: Scenario = { ...options.scenario, rate, durationSeconds: options.stepSeconds };
    const run = await measureRunCpu(options.listGroups, () => runScenario(scenario, options.tokens));
    const { report } = run;
    const result: StepResult = { rate, achievedRate: report.achievedRate, errors: report.errors.total, latencyMs: report.latencyMs };
    const reasons = stepFailures(result, options.p99LimitMs);
    const step: CapacityStep = {
      ...result,
      latencyMs: { p50: report.latencyMs.p50, p95: report.latencyMs.p95, p99: report.latencyMs.p99, max: report.latencyMs.max },
      requests: report.requests,
      errorsByKind: report.errors.byKind,
      schedulerLagMs: report.schedulerLagMs,
      cpuMsPerRequest: run.cpuMsPerRequest,
      cores: run.cores,
      load: options.load(),
      passed: reasons.length === 0,
      reasons,
    };
    steps.push(step);
    options.onStep?.(step);
    if (step.passed) [index, attempt] = [index + 1, 0];
    else if (++attempt > options.retries) break;
  }
  const decisive = decisiveSteps(steps);
  const sustained = sustainedRate(steps);
  return {
    steps,
    decisive,
    sustained,
    atSustained: decisive.find((s) => s.rate === sustained),
    failed: decisive.find((s) => !s.passed),
  };
}
