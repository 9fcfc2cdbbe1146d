/**
 * Aggregates one run: HDR histograms (microseconds, 3 significant digits) overall, per district, per
 * operation and per second, errors by kind, and the scenario's thresholds checked against them.
 */
import { build, type Histogram } from 'hdr-histogram-js';
import type { Scenario } from '../scenarios/scenario.ts';

export interface Outcome {
  /** Milliseconds since the run started, when the request was sent. */
  sentAtMs: number;
  latencyMs: number;
  district: string;
  operation: string;
  /** null on success; otherwise http_<status>, graphql_<CODE>, timeout or network_<code>. */
  error: string | null;
}

export interface LatencySummary {
  requests: number;
  errors: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export interface ThresholdResult {
  name: string;
  limit: number;
  actual: number;
  passed: boolean;
}

export interface RunReport {
  scenario: string;
  target: string;
  startedAt: string;
  configured: { rate: number; durationSeconds: number; mix: Scenario['mix']; districts: number };
  achievedRate: number;
  requests: number;
  errors: { total: number; rate: number; byKind: Record<string, number> };
  latencyMs: LatencySummary & { min: number; mean: number; p90: number };
  /** How late the generator sent requests against their schedule (a busy generator shows here, not as lower load). */
  schedulerLagMs: { p99: number; max: number };
  byDistrict: (LatencySummary & { district: string })[];
  byOperation: (LatencySummary & { operation: string })[];
  timeline: (LatencySummary & { second: number })[];
  thresholds: ThresholdResult[];
  passed: boolean;
}

const newHistogram = (): Histogram => build({ numberOfSignificantValueDigits: 3, lowestDiscernibleValue: 1 });
const ms = (micros: number) => Math.round(micros) / 1000;

class Group {
  readonly histogram = newHistogram();
  requests = 0;
  errors = 0;
  record(outcome: Outcome) {
    this.requests++;
    if (outcome.error) this.errors++;
    this.histogram.recordValue(Math.max(1, Math.round(outcome.latencyMs * 1000)));
  }
  summary(): LatencySummary {
    const h = this.histogram;
    const at = (p: number) => (this.requests ? ms(h.getValueAtPercentile(p)) : 0);
    return { requests: this.requests, errors: this.errors, p50: at(50), p95: at(95), p99: at(99), max: this.requests ? ms(h.maxValue) : 0 };
  }
}

const keyed = () => {
  const groups = new Map<string, Group>();
  return {
    groups,
    get(key: string) {
      let group = groups.get(key);
      if (!group) groups.set(key, (group = new Group()));
      return group;
    },
  };
};

export class RunRecorder {
  readonly #overall = new Group();
  readonly #districts = keyed();
  readonly #operations = keyed();
  readonly #seconds = keyed();
  readonly #lag = newHistogram();
  readonly #errorsByKind: Record<string, number> = {};

  record(outcome: Outcome): void {
    this.#overall.record(outcome);
    this.#districts.get(outcome.district).record(outcome);
    this.#operations.get(outcome.operation).record(outcome);
    this.#seconds.get(String(Math.floor(outcome.sentAtMs / 1000))).record(outcome);
    if (outcome.error) this.#errorsByKind[outcome.error] = (this.#errorsByKind[outcome.error] ?? 0) + 1;
  }

  recordLag(lagMs: number): void {
    this.#lag.recordValue(Math.max(1, Math.round(lagMs * 1000)));
  }

  get requests() {
    return this.#overall.requests;
  }
  get errors() {
    return this.#overall.errors;
  }

  report(scenario: Scenario, target: string, startedAt: Date, elapsedSeconds: number, districtCount: number): RunReport {
    const overall = this.#overall.summary();
    const h = this.#overall.histogram;
    const byDistrict = [...this.#districts.groups].map(([district, g]) => ({ district, ...g.summary() }));
    const latencyMs = {
      ...overall,
      min: overall.requests ? ms(h.minNonZeroValue) : 0,
      mean: overall.requests ? ms(h.mean) : 0,
      p90: overall.requests ? ms(h.getValueAtPercentile(90)) : 0,
    };
    const errorRate = overall.requests ? overall.errors / overall.requests : 0;
    const t = scenario.thresholds;
    const thresholds: ThresholdResult[] = [
      { name: 'p95 (ms)', limit: t.p95Ms, actual: overall.p95, passed: overall.p95 <= t.p95Ms },
      ...(t.p99Ms === undefined ? [] : [{ name: 'p99 (ms)', limit: t.p99Ms, actual: overall.p99, passed: overall.p99 <= t.p99Ms }]),
      { name: 'error rate', limit: t.errorRate, actual: errorRate, passed: errorRate <= t.errorRate },
      { name: 'requests sent', limit: 1, actual: overall.requests, passed: overall.requests >= 1 },
    ];
    if (t.districtP95Ms !== undefined) {
      const worst = byDistrict.reduce((w, d) => (d.p95 > w.p95 ? d : w), { district: '-', p95: 0 });
      thresholds.push({
        name: `every district's p95 (ms), worst ${worst.district}`,
        limit: t.districtP95Ms,
        actual: worst.p95,
        passed: worst.p95 <= t.districtP95Ms,
      });
    }
    return {
      scenario: scenario.name,
      target,
      startedAt: startedAt.toISOString(),
      configured: { rate: scenario.rate, durationSeconds: scenario.durationSeconds, mix: scenario.mix, districts: districtCount },
      achievedRate: Math.round((overall.requests / Math.max(0.001, elapsedSeconds)) * 10) / 10,
      requests: overall.requests,
      errors: { total: overall.errors, rate: errorRate, byKind: { ...this.#errorsByKind } },
      latencyMs,
      schedulerLagMs: { p99: ms(this.#lag.getValueAtPercentile(99)), max: ms(this.#lag.maxValue) },
      byDistrict: byDistrict.sort((a, b) => b.requests - a.requests || a.district.localeCompare(b.district)),
      byOperation: [...this.#operations.groups].map(([operation, g]) => ({ operation, ...g.summary() })),
      timeline: [...this.#seconds.groups]
        .map(([second, g]) => ({ second: Number(second), ...g.summary() }))
        .sort((a, b) => a.second - b.second),
      thresholds,
      passed: thresholds.every((r) => r.passed),
    };
  }
}

/** The lines a person reads at the end of a run. */
export function formatReport(report: RunReport): string {
  const l = report.latencyMs;
  const lines = [
    `${report.scenario}: ${report.requests} requests in ${report.configured.durationSeconds} s (${report.achievedRate}/s of ${report.configured.rate}/s), ${report.configured.districts} districts, mix ${report.configured.mix.kind}`,
    `latency ms: p50 ${l.p50}  p90 ${l.p90}  p95 ${l.p95}  p99 ${l.p99}  max ${l.max}  (min ${l.min}, mean ${l.mean})`,
    `errors: ${report.errors.total} (${(report.errors.rate * 100).toFixed(3)} %)${Object.entries(report.errors.byKind)
      .map(([k, n]) => `  ${k}: ${n}`)
      .join('')}`,
    `generator lag ms: p99 ${report.schedulerLagMs.p99}  max ${report.schedulerLagMs.max}`,
    'by operation:',
    ...report.byOperation.map(
      (o) =>
        `  ${o.operation.padEnd(16)} ${String(o.requests).padStart(6)} req  p50 ${o.p50}  p95 ${o.p95}  p99 ${o.p99}  errors ${o.errors}`,
    ),
    `by district (busiest 5 of ${report.byDistrict.length}):`,
    ...report.byDistrict
      .slice(0, 5)
      .map(
        (d) =>
          `  ${d.district.padEnd(16)} ${String(d.requests).padStart(6)} req  p50 ${d.p50}  p95 ${d.p95}  p99 ${d.p99}  errors ${d.errors}`,
      ),
    'thresholds:',
    ...report.thresholds.map((t) => `  ${t.passed ? 'ok  ' : 'FAIL'} ${t.name}: ${t.actual} (limit ${t.limit})`),
  ];
  return lines.join('\n');
}
