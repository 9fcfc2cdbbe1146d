/**
 * `npm run load -- <scenario> [--tokens file] [--rate n] [--duration s] [--mix kind] [--districts n]`:
 * runs a scenario of load/scenarios/ against the tokens file's target with an open model, prints the
 * figures, writes report.json and chart.svg, and exits 1 when a threshold fails (2 on bad input).
 */
import '../../config/node-version.ts';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import cliProgress from 'cli-progress';
import {
  districtShares,
  parseScenario,
  parseTokens,
  requestPlanner,
  type DistrictMix,
  type Scenario,
  type TokensFile,
} from '../scenarios/scenario.ts';
import { DEFAULT_TOKENS_FILE } from '../seed/tokens.ts';
import { renderChart } from './chart.ts';
import { runOpenLoop } from './open-loop.ts';
import { formatReport, RunRecorder, type Outcome, type RunReport } from './report.ts';

export const SCENARIOS_DIR = fileURLToPath(new URL('../scenarios/', import.meta.url));

/** A scenario by name (`mixed`) or by path (`./my.json`). */
export async function loadScenario(nameOrPath: string): Promise<Scenario> {
  const path = nameOrPath.endsWith('.json') ? resolve(nameOrPath) : join(SCENARIOS_DIR, `${nameOrPath}.json`);
  if (!existsSync(path)) throw new Error(`no scenario ${nameOrPath} (looked for ${path})`);
  return parseScenario(JSON.parse(await readFile(path, 'utf8')), path);
}

export async function loadTokens(path: string): Promise<TokensFile> {
  if (!existsSync(path)) throw new Error(`no tokens file at ${path}: write one with npm run load:tokens`);
  const tokens = parseTokens(JSON.parse(await readFile(path, 'utf8')), path);
  if (tokens.expiresAt && Date.parse(tokens.expiresAt) < Date.now() + 5 * 60_000)
    throw new Error(`the tokens in ${path} expire at ${tokens.expiresAt}: write fresh ones with npm run load:tokens`);
  return tokens;
}

export interface RunOptions {
  /** Overrides the tokens file's target. */
  target?: string;
  /** Runs the scenario this long first, unrecorded (JIT, caches, connection pools). */
  warmupSeconds?: number;
  progress?: boolean;
  /** Sees every recorded request (the bench splits districts with it). */
  onOutcome?: (outcome: Outcome) => void;
}

export async function runScenario(scenario: Scenario, tokens: TokensFile, options: RunOptions = {}): Promise<RunReport> {
  const target = options.target ?? tokens.target;
  const districtCount = districtShares(scenario, tokens).length;
  const timeoutMs = scenario.timeoutMs ?? 10_000;
  if (options.warmupSeconds) {
    await runOpenLoop({
      target,
      rate: scenario.rate,
      durationSeconds: options.warmupSeconds,
      timeoutMs,
      next: requestPlanner(scenario, tokens),
      onOutcome: () => {},
    });
  }
  const recorder = new RunRecorder();
  const bar = new cliProgress.SingleBar(
    {
      format: `${scenario.name} {bar} {value}/{total} s | sent {sent} | in flight {inFlight} | errors {errors}`,
      noTTYOutput: true,
      notTTYSchedule: 10_000,
    },
    cliProgress.Presets.shades_classic,
  );
  const started = new Date();
  if (options.progress) bar.start(scenario.durationSeconds, 0, { sent: 0, inFlight: 0, errors: 0 });
  const startedAt = performance.now();
  const { sendingSeconds } = await runOpenLoop({
    target,
    rate: scenario.rate,
    durationSeconds: scenario.durationSeconds,
    timeoutMs,
    next: requestPlanner(scenario, tokens),
    onOutcome: (outcome) => {
      recorder.record(outcome);
      options.onOutcome?.(outcome);
    },
    onLag: (lag) => recorder.recordLag(lag),
    onTick: (sent, inFlight) => {
      if (options.progress)
        bar.update(Math.min(scenario.durationSeconds, Math.round((performance.now() - startedAt) / 1000)), {
          sent,
          inFlight,
          errors: recorder.errors,
        });
    },
  });
  if (options.progress) {
    bar.update(scenario.durationSeconds, { sent: recorder.requests, inFlight: 0, errors: recorder.errors });
    bar.stop();
  }
  return recorder.report(scenario, target, started, Math.max(sendingSeconds, scenario.durationSeconds - 1 / scenario.rate), districtCount);
}

export async function writeRunFiles(report: RunReport, scenario: Scenario, outDir: string): Promise<{ json: string; svg: string }> {
  await mkdir(outDir, { recursive: true });
  const json = join(outDir, 'report.json');
  const svg = join(outDir, 'chart.svg');
  await writeFile(json, `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(svg, renderChart(report, scenario.thresholds));
  return { json, svg };
}

const positiveNumber = (value: string): number => {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number');
  return n;
};

async function main(): Promise<number> {
  const program = new Command('load')
    .description('Run a load scenario (open model) and check its thresholds')
    .argument('<scenario>', 'a name in load/scenarios (mixed, point-lookup, …) or a path to a scenario JSON file')
    .option('--tokens <file>', 'the tokens file (npm run load:tokens)', DEFAULT_TOKENS_FILE)
    .option('--target <url>', "override the tokens file's gateway URL")
    .option('--rate <n>', "arrivals per second (overrides the scenario's)", positiveNumber)
    .option('--duration <s>', "seconds (overrides the scenario's)", positiveNumber)
    .option('--mix <kind>', 'uniform, skewed or hot (hot: the largest district at 10x)')
    .option('--districts <n>', 'use the N largest districts', positiveNumber)
    .option('--warmup <s>', 'unrecorded seconds at the same rate before measuring', positiveNumber)
    .option('--out <dir>', 'where report.json and chart.svg go (default load/out/<scenario>-<time>)')
    .option('--no-progress', 'no progress bar');
  program.parse();
  const options = program.opts<{
    tokens: string;
    target?: string;
    rate?: number;
    duration?: number;
    mix?: string;
    districts?: number;
    warmup?: number;
    out?: string;
    progress: boolean;
  }>();
  let scenario: Scenario;
  let tokens: TokensFile;
  try {
    scenario = await loadScenario(program.args[0]!);
    tokens = await loadTokens(resolve(options.tokens));
    const mixes: Record<string, DistrictMix> = {
      uniform: { kind: 'uniform' },
      skewed: { kind: 'skewed' },
      hot: { kind: 'hot', district: 'largest', factor: 10 },
    };
    if (options.mix !== undefined && !mixes[options.mix]) throw new Error('--mix must be uniform, skewed or hot');
    scenario = parseScenario({
      ...scenario,
      ...(options.rate && { rate: options.rate }),
      ...(options.duration && { durationSeconds: options.duration }),
      ...(options.mix && { mix: mixes[options.mix] }),
      ...(options.districts && { districts: Math.floor(options.districts) }),
    });
    if (options.target && !URL.canParse(options.target)) throw new Error('--target must be a URL');
    districtShares(scenario, tokens); // a hot district missing from the tokens file is bad input, not a failed run
  } catch (error) {
    console.error(`load: ${(error as Error).message}`);
    return 2;
  }
  const report = await runScenario(scenario, tokens, { target: options.target, warmupSeconds: options.warmup, progress: options.progress });
  const outDir = resolve(options.out ?? join('load/out', `${scenario.name}-${new Date().toISOString().replace(/[:.]/g, '-')}`));
  const files = await writeRunFiles(report, scenario, outDir);
  console.log(`\n${formatReport(report)}\nreport: ${files.json}\nchart:  ${files.svg}`);
  return report.passed ? 0 : 1;
}

if (import.meta.main) {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(`load failed: ${error instanceof Error ? error.message : String(error)}`);
      process.exit(2);
    },
  );
}
