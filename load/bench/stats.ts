/** Exact percentiles of a few thousand sequential timings, and min/median/max across runs. */

export interface Summary {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

const round = (value: number, digits = 3) => Math.round(value * 10 ** digits) / 10 ** digits;

export function summarize(samplesMs: number[]): Summary {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const at = (p: number) => round(sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0);
  return { count: sorted.length, p50: at(50), p95: at(95), p99: at(99), max: round(sorted.at(-1) ?? 0) };
}

export interface Spread {
  min: number;
  median: number;
  max: number;
  runs: number[];
}

export function spread(values: number[], digits = 3): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted.length % 2 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
  return {
    min: round(sorted[0] ?? 0, digits),
    median: round(median, digits),
    max: round(sorted.at(-1) ?? 0, digits),
    runs: values.map((v) => round(v, digits)),
  };
}

export const formatSpread = (s: Spread, unit = '') => `${s.median}${unit} (min ${s.min}, max ${s.max}, ${s.runs.length} runs)`;
