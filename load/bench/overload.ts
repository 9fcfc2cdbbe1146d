/**
 * Bench part 11, overload fairness: the noisy-neighbour scenario pushed past the box's capacity by one district.
 * The other districts' load runs in the bench process, as in part 5 (uniform over the scenario's districts, the hot
 * one included at the others' rate); the hot district's flood, `factor` times the rate the box sustains, comes from
 * a load runner of its own (`npm run load`, one district), so the flood's generator does not delay the measuring
 * event loop. Each run measures the others' p95 without the flood, then with it; the hot district's answers come
 * from its runner's report (429s refused by the gateway's district limits, gateway/district-limits.ts).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { districtShares, type Scenario, type TokensFile } from '../scenarios/scenario.ts';
import type { RunReport } from '../runner/report.ts';
import { runScenario, writeRunFiles } from '../runner/run.ts';
import { summarize } from './stats.ts';

const RUN_SCRIPT = fileURLToPath(new URL('../runner/run.ts', import.meta.url));
/** Seconds the flood runs before the others' warm-up starts, so they are measured against a flood in full swing. */
const FLOOD_LEAD_SECONDS = 3;
const WARMUP_SECONDS = 5;

export interface OverloadOptions {
  /** The noisy-neighbour scenario: its operations and districts. */
  scenario: Scenario;
  tokens: TokensFile;
  /** The tokens file the flood's runner reads (the bench writes one). */
  tokensFile: string;
  outDir: string;
  runs: number;
  seconds: number;
  /** Requests a second of every district together, the hot one at its share, without the flood. */
  othersRate: number;
  /** The flood: requests a second of the hot district alone. */
  hotRate: number;
  load(): string;
  log(line: string): void;
}

export interface OverloadRun {
  baselineP95: number;
  duringP95: number;
  rise: number;
  othersRequests: number;
  othersErrors: number;
  othersErrorKinds: Record<string, number>;
  hot: { requests: number; achievedRate: number; refused429: number; share429: number; errors: Record<string, number>; servedP95?: number };
}

export async function measureOverloadFairness(options: OverloadOptions): Promise<{ hot: string; runs: OverloadRun[] }> {
  const { scenario, tokens } = options;
  const others: Scenario = { ...scenario, mix: { kind: 'uniform' }, rate: options.othersRate, durationSeconds: options.seconds };
  // The flood's runner takes the N largest districts: the hot district is the largest, as in part 5.
  const hot = districtShares({ ...others, districts: 1 }, tokens)[0]!.district.slug;
  const floodScenarioFile = join(options.outDir, 'overload-flood-scenario.json');
  await writeFile(
    floodScenarioFile,
    `${JSON.stringify({ ...scenario, name: 'overload-flood', districts: 1, mix: { kind: 'uniform' } }, null, 2)}\n`,
  );

  const othersRun = async (label: string, run: number) => {
    const latencies: number[] = [];
    const errorKinds: Record<string, number> = {};
    const report = await runScenario(others, tokens, {
      warmupSeconds: WARMUP_SECONDS,
      onOutcome: (o) => {
        if (o.district === hot) return;
        latencies.push(o.latencyMs);
        if (o.error) errorKinds[o.error] = (errorKinds[o.error] ?? 0) + 1;
      },
    });
    await writeRunFiles(report, others, join(options.outDir, `overload-${label}-${run + 1}`));
    return { p95: summarize(latencies).p95, requests: latencies.length, errorKinds };
  };

  const runs: OverloadRun[] = [];
  for (let run = 0; run < options.runs; run++) {
    const baseline = await othersRun('baseline', run);
    const floodDir = join(options.outDir, `overload-flood-${run + 1}`);
    const flood = startFlood(options, floodScenarioFile, floodDir, FLOOD_LEAD_SECONDS + WARMUP_SECONDS + options.seconds + 2);
    await new Promise((resolve) => setTimeout(resolve, FLOOD_LEAD_SECONDS * 1000));
    const during = await othersRun('during', run);
    const floodReport = await flood;
    const refused429 = floodReport.errors.byKind.http_429 ?? 0;
    const result: OverloadRun = {
      baselineP95: baseline.p95,
      duringP95: during.p95,
      rise: during.p95 / baseline.p95 - 1,
      othersRequests: during.requests + baseline.requests,
      othersErrors: [baseline, during].reduce((sum, r) => sum + Object.values(r.errorKinds).reduce((a, b) => a + b, 0), 0),
      othersErrorKinds: mergeCounts(baseline.errorKinds, during.errorKinds),
      hot: {
        requests: floodReport.requests,
        achievedRate: floodReport.achievedRate,
        refused429,
        share429: floodReport.requests ? refused429 / floodReport.requests : 0,
        errors: floodReport.errors.byKind,
      },
    };
    runs.push(result);
    options.log(
      `  overload run ${run + 1}: others' p95 ${result.baselineP95} -> ${result.duringP95} ms (${(result.rise * 100).toFixed(1)} %), others' errors ${result.othersErrors}; ${hot} sent ${result.hot.requests} at ${result.hot.achievedRate}/s, ${(result.hot.share429 * 100).toFixed(1)} % 429 (load ${options.load()})`,
    );
  }
  return { hot, runs };
}

const mergeCounts = (...counts: Record<string, number>[]) => {
  const merged: Record<string, number> = {};
  for (const c of counts) for (const [k, v] of Object.entries(c)) merged[k] = (merged[k] ?? 0) + v;
  return merged;
};

/** `npm run load` for the hot district alone at `hotRate`; resolves with its report once it has finished. */
async function startFlood(options: OverloadOptions, scenarioFile: string, outDir: string, seconds: number): Promise<RunReport> {
  const child = spawn(
    process.execPath,
    [
      RUN_SCRIPT,
      scenarioFile,
      '--tokens',
      options.tokensFile,
      '--rate',
      String(options.hotRate),
      '--duration',
      String(seconds),
      '--no-progress',
      '--out',
      outDir,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  // 1: its thresholds failed, which a flood refused with 429 does by design.
  if (code !== 0 && code !== 1) throw new Error(`the flood's load runner exited with ${code}: ${stderr.slice(-500)}`);
  return JSON.parse(await readFile(join(outDir, 'report.json'), 'utf8')) as RunReport;
}
