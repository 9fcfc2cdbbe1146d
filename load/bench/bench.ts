/**
 * `npm run bench [-- --parts 1,2,3 --runs 3]`: the figures of the load and hot-path issues, measured against the
 * platform configured by the environment (run `npm run load:seed` with the same environment first). Starts
 * the platform in processes of its own (one per service, as `npm start` runs it; `--in-process`: one), writes a
 * tokens file, measures, prints each figure against its goal with the machine and load, and writes bench.json
 * (plus each load run's report and chart, and the capacity chart) to the output folder. Exits 1 when a goal is
 * missed.
 */
import '../../config/node-version.ts';
import { cpus, loadavg } from 'node:os';
import { writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import pg from 'pg';
import { loadOrCreateKeys } from '../../dev/keys.ts';
import { readConfig } from '../../config/config.ts';
import { districtShares, type Scenario, type TokensFile } from '../scenarios/scenario.ts';
import { loadScenario, runScenario, writeRunFiles } from '../runner/run.ts';
import { openServiceDatabases } from '../seed/databases.ts';
import { buildTokensFile } from '../seed/tokens.ts';
import { benchService, measureContextOverhead, measureRlsThroughput, openDatabasePaths } from './database.ts';
import { HOP_SUBGRAPH, measureGatewayHop } from './hop.ts';
import { compareWithHiveGateway, startHiveGatewayProcess } from './hive-gateway.ts';
import { startPlatformProcess } from './platform-process.ts';
import { formatSpread, spread, summarize, type Spread } from './stats.ts';
import { platformProcessGroups, postgresProcesses } from './process-cpu.ts';
import {
  cpuCeilingRate,
  cpuRunDetails,
  cpuSpreads,
  formatCpu,
  formatCpuSpreads,
  formatRunCpu,
  measureCpuPerProcess,
  measureRunCpu,
  platformCpuGroups,
  type Check,
  type RunCpu,
} from './cpu-per-process.ts';
import { CAPACITY_GOAL_RATE, CAPACITY_P99_LIMIT_MS, formatStep, measureCapacity, stepRates } from './capacity.ts';
import { renderCapacityChart } from '../runner/chart.ts';
import { reconcileBenchFigure } from './reconcile.ts';
import {
  EXPORT_MIN_STUDENTS,
  measureDataLifecycle,
  measureOnboarding,
  measurePropagationAcrossGatewayProcesses,
  ONBOARDING_GOAL_SECONDS,
  PROPAGATION_GOAL_MS,
} from './lifecycle.ts';
import { directoryService } from '../../config/registry.ts';
import { measureOverloadFairness } from './overload.ts';
import { TELEMETRY_SIDES, measureTelemetryCost, type TelemetrySide } from './telemetry-cost.ts';

interface Figure {
  figure: number;
  title: string;
  goal: string;
  value: string;
  met: boolean;
  loadBefore: string;
  /** Goals checked one by one (part 6: each process), printed under the figure. */
  checks?: Check[];
  /** CPU ms per request of each process group while the figure was measured (median, min, max across runs). */
  cpuMsPerRequest?: Record<string, Spread>;
  details: unknown;
}

const PARTS: Record<number, string> = {
  1: 'RLS vs explicit',
  2: 'tenant-context overhead',
  3: 'gateway hop',
  4: 'end to end',
  5: 'noisy neighbour',
  6: 'CPU per process',
  7: 'gateway vs Hive Gateway',
  8: 'capacity',
  9: 'reconcile throughput',
  10: 'district lifecycle',
  11: 'overload fairness',
  12: 'telemetry cost',
};

/** Figure 8 on the full data set (500 districts, 5 M students) on the two-core development machine. */
const DEFAULT_CAPACITY = 350;

const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

const parts = (value: string): number[] => {
  const list = value.split(',').map(Number);
  if (list.some((n) => !PARTS[n])) throw new InvalidArgumentError(`parts are numbers of ${Object.keys(PARTS).join(', ')}, comma-separated`);
  return list;
};
const positiveInt = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
};

const nonNegativeInt = (value: string): number => (value === '0' ? 0 : positiveInt(value));

async function main(): Promise<number> {
  const program = new Command('bench')
    .description('Measure the figures of the load and hot-path issues against the configured (seeded) platform')
    .option(
      '--parts <list>',
      Object.entries(PARTS)
        .map(([n, title]) => `${n} ${title}`)
        .join(', '),
      parts,
      Object.keys(PARTS).map(Number),
    )
    .option('--runs <n>', 'repetitions of each figure (min/median/max)', positiveInt, 3)
    .option('--e2e-seconds <n>', 'duration of each end-to-end run (figure 4)', positiveInt, 60)
    .option('--e2e-rate <n>', 'arrivals per second of figure 4 (the goal is stated at 100)', positiveInt, 100)
    .option('--noisy-seconds <n>', 'duration of each noisy-neighbour run, baseline and hot (figure 5)', positiveInt, 30)
    .option('--hive-seconds <n>', 'duration of each run of either gateway (figure 7)', positiveInt, 30)
    .option('--connections <n>', 'connections per path for figure 1', positiveInt, 4)
    .option('--cpu-rate <n>', 'arrivals per second of the CPU-per-process run (figure 6)', positiveInt, 100)
    .option('--cpu-seconds <n>', 'measured seconds of each CPU-per-process run, after 10 s of warm-up (figure 6)', positiveInt, 30)
    .option('--capacity-start <n>', 'first arrival rate of the capacity steps (figure 8)', positiveInt, 50)
    .option('--capacity-step <n>', 'rate added at each capacity step', positiveInt, 50)
    .option('--capacity-max <n>', 'last capacity step, if no step fails before', positiveInt, 600)
    .option('--capacity-seconds <n>', 'measured seconds of each capacity step, after one 5 s warm-up', positiveInt, 12)
    .option(
      '--capacity-retries <n>',
      'attempts again at a failed capacity step before stopping (noise from other processes)',
      nonNegativeInt,
      1,
    )
    .option('--lifecycle-districts <n>', 'districts onboarded from one CSV file (figure 10)', positiveInt, 500)
    .option('--lifecycle-runs <n>', 'export, offboard and restore cycles of the 400k-student district (figure 10)', positiveInt, 1)
    .option('--redis-url <url>', 'the Redis both gateways of figure 10 subscribe to (default REDIS_URL)')
    .option(
      '--overload-capacity <n>',
      "the box's sustained rate for figure 11 (default: figure 8's when measured in the same run, else 350)",
      positiveInt,
    )
    .option('--overload-factor <n>', "the hot district's rate in figure 11, as a multiple of the capacity", positiveInt, 5)
    .option('--overload-others-rate <n>', 'arrivals per second of every district together, without the flood (figure 11)', positiveInt, 40)
    .option('--overload-seconds <n>', 'measured seconds of each overload run, baseline and flood (figure 11)', positiveInt, 30)
    .option('--telemetry-seconds <n>', 'duration of each run of either set of services (figure 12)', positiveInt, 30)
    .option('--cpu-prof', 'run the platform with --cpu-prof; profiles go to <out>/profiles')
    .option(
      '--in-process',
      'every service in one process (npm start -- --in-process), not the gateway and each subgraph in a process of their own (npm start, as deployed)',
    )
    .option('--out <dir>', 'output folder (default load/out/bench-<time>)')
    .parse();
  const options = program.opts<{
    parts: number[];
    runs: number;
    e2eSeconds: number;
    e2eRate: number;
    noisySeconds: number;
    hiveSeconds: number;
    connections: number;
    cpuRate: number;
    cpuSeconds: number;
    capacityStart: number;
    capacityStep: number;
    capacityMax: number;
    capacitySeconds: number;
    capacityRetries: number;
    lifecycleDistricts: number;
    lifecycleRuns: number;
    redisUrl?: string;
    overloadCapacity?: number;
    overloadFactor: number;
    overloadOthersRate: number;
    overloadSeconds: number;
    telemetrySeconds: number;
    cpuProf?: boolean;
    inProcess?: boolean;
    out?: string;
  }>();
  const outDir = resolve(options.out ?? join('load/out', `bench-${new Date().toISOString().replace(/[:.]/g, '-')}`));
  await mkdir(outDir, { recursive: true });
  const config = readConfig();
  if (config.jwt.jwksUrl || config.jwt.jwksFile) throw new Error('bench signs development tokens: unset JWKS_URL / JWKS_FILE');
  const redisUrl = options.redisUrl ?? config.redisUrl;
  if (options.parts.includes(10) && !redisUrl)
    throw new Error('part 10 runs two gateways on one Redis: set REDIS_URL or --redis-url (e.g. redis://127.0.0.1:6379)');

  console.log(`bench: ${cpus().length} cores (${cpus()[0]?.model.trim()}), load average ${load()}; output ${outDir}`);
  const profiling = options.cpuProf ? [`--cpu-prof`, `--cpu-prof-dir=${join(outDir, 'profiles')}`] : [];
  const platform = await startPlatformProcess({}, join(outDir, 'platform.log'), { inProcess: options.inProcess, nodeOptions: profiling });
  const topology = options.inProcess ? 'one process (npm start -- --in-process)' : 'one process per service (npm start)';
  const databases = await openServiceDatabases(config);
  const figures: Figure[] = [];
  const owners: Record<string, pg.Client> = {};
  try {
    for (const [service, db] of Object.entries(databases.byService)) {
      owners[service] = new pg.Client({ connectionString: db.ownerUrl });
      await owners[service].connect();
    }
    const { rows } = await owners[benchService().name]!.query<{ server_version: string; students: string }>(
      `select current_setting('server_version') as server_version, (select count(*) from student) as students`,
    );
    const postgres = `PostgreSQL ${rows[0]!.server_version} (${databases.server.embedded ? 'embedded' : 'DATABASE_URL'})`;
    const machine = {
      cores: cpus().length,
      cpu: cpus()[0]?.model.trim(),
      postgres,
      topology,
      districts: 0,
      students: Number(rows[0]!.students),
    };
    // Each figure is printed and saved as soon as it is measured, so an interrupted bench keeps what it has.
    const record = (f: Figure) => {
      figures.push(f);
      console.log(
        `${f.met ? 'met   ' : 'MISSED'} ${f.figure}. ${f.title}\n       goal ${f.goal}: ${f.value} (load before ${f.loadBefore}, after ${load()})`,
      );
      for (const c of f.checks ?? []) console.log(`       ${c.met ? 'met   ' : 'MISSED'} ${c.name} ${c.goal}: ${c.value}`);
      if (f.cpuMsPerRequest) console.log(`       CPU ms per request: ${formatCpuSpreads(f.cpuMsPerRequest)}`);
      writeFileSync(join(outDir, 'bench.json'), `${JSON.stringify({ machine, figures }, null, 2)}\n`);
    };
    const keys = await loadOrCreateKeys(config.dataDir);
    const tokens: TokensFile = await buildTokensFile(owners, keys, config.jwt.tenantClaim, {
      target: platform.gatewayUrl,
      expiresIn: '12h',
      all: false,
    });
    tokens.expiresAt = new Date(Date.now() + 12 * 3600_000).toISOString();
    await writeFile(join(outDir, 'tokens.json'), JSON.stringify(tokens), { mode: 0o600 });
    machine.districts = tokens.districts.length;
    console.log(
      `${postgres}; platform: ${topology}; ${tokens.districts.length} districts, ${Number(rows[0]!.students).toLocaleString('en-US')} students`,
    );
    const largest = tokens.districts.slice(0, 20);
    // CPU of the platform's processes (parts 6 and 8): PostgreSQL from the connection when it is not embedded.
    const listGroups = platformCpuGroups(
      platform.pid,
      databases.server.embedded ? undefined : () => postgresProcesses(owners[benchService().name]!),
    );
    // Profiles are named by process id: say which process is which service.
    if (options.cpuProf) {
      await mkdir(join(outDir, 'profiles'), { recursive: true });
      await writeFile(
        join(outDir, 'profiles', 'processes.json'),
        `${JSON.stringify(await platformProcessGroups(platform.pid), null, 2)}\n`,
      );
    }

    if (options.parts.includes(1) || options.parts.includes(2)) {
      const paths = await openDatabasePaths(databases.byService[benchService().name]!, options.connections);
      try {
        if (options.parts.includes(1)) {
          const loadBefore = load();
          const result = await measureRlsThroughput(paths, largest, { connections: options.connections, seconds: 8, rounds: options.runs });
          const ratio = spread(result.ratios);
          record({
            figure: 1,
            title: 'RLS + tenant session vs explicit WHERE (owner, BYPASSRLS): throughput ratio',
            goal: '>= 0.95',
            value: `${formatSpread(ratio)}; tenant ${formatSpread(spread(result.tenantPerSecond, 0), ' tx/s')}, explicit ${formatSpread(spread(result.explicitPerSecond, 0), ' tx/s')}, ${options.connections} connections each; RLS alone (vs explicit + the same set_config) ${formatSpread(spread(result.rlsOnlyRatios))}`,
            met: ratio.median >= 0.95,
            loadBefore,
            details: result,
          });
        }
        if (options.parts.includes(2)) {
          const loadBefore = load();
          const runs = [];
          for (let run = 0; run < options.runs; run++) runs.push(await measureContextOverhead(paths, largest, 1500));
          const overhead = spread(runs.map((r) => r.overheadP50Ms));
          const extra = runs[0]!.statementsWith.length - runs[0]!.statementsWithout.length;
          record({
            figure: 2,
            title: 'Tenant-context overhead per request (p50, with vs without the session context) and extra round trips',
            goal: '<= 0.3 ms at p50, <= 1 extra round trip',
            value: `${formatSpread(overhead, ' ms')}; with ${spread(runs.map((r) => r.withContext.p50)).median} ms, without ${spread(runs.map((r) => r.withoutContext.p50)).median} ms; statements ${runs[0]!.statementsWith.length} vs ${runs[0]!.statementsWithout.length} (${extra} extra)`,
            met: overhead.median <= 0.3 && extra <= 1,
            loadBefore,
            details: runs,
          });
        }
      } finally {
        await paths.close();
      }
    }

    if (options.parts.includes(3)) {
      const loadBefore = load();
      const runs = [];
      for (let run = 0; run < options.runs; run++) {
        runs.push(
          await measureGatewayHop({
            gatewayUrl: platform.gatewayUrl,
            subgraphUrl: platform.subgraphUrl(HOP_SUBGRAPH),
            contextPrivateKey: keys.context.privateJwk,
            districts: largest,
            iterations: 1500,
          }),
        );
      }
      const ratio = spread(runs.map((r) => r.p95Ratio));
      record({
        figure: 3,
        title: `Gateway hop: student(id) through the gateway vs straight to the ${HOP_SUBGRAPH} subgraph (signed context), sequential`,
        goal: 'gateway p95 <= 1.5 x direct',
        value: `${formatSpread(ratio, 'x')}; gateway p50/p95 ${spread(runs.map((r) => r.gateway.p50)).median}/${spread(runs.map((r) => r.gateway.p95)).median} ms, direct ${spread(runs.map((r) => r.direct.p50)).median}/${spread(runs.map((r) => r.direct.p95)).median} ms`,
        met: ratio.median <= 1.5,
        loadBefore,
        details: runs,
      });
    }

    if (options.parts.includes(4)) {
      const loadBefore = load();
      const scenario: Scenario = { ...(await loadScenario('mixed')), durationSeconds: options.e2eSeconds, rate: options.e2eRate };
      const runs = [];
      const cpuRuns: RunCpu[] = [];
      for (let run = 0; run < options.runs; run++) {
        await runScenario({ ...scenario, durationSeconds: 10 }, tokens); // warm-up, outside the CPU window
        const cpu = await measureRunCpu(listGroups, () => runScenario(scenario, tokens));
        const report = cpu.report;
        await writeRunFiles(report, scenario, join(outDir, `e2e-${run + 1}`));
        runs.push(report);
        cpuRuns.push(cpu);
        console.log(
          `  e2e run ${run + 1}: p50 ${report.latencyMs.p50} p95 ${report.latencyMs.p95} p99 ${report.latencyMs.p99} ms, errors ${report.errors.total}, ${report.achievedRate}/s; CPU ms/request ${formatCpu(cpu.cpuMsPerRequest, '')} (load ${load()})`,
        );
      }
      const p95 = spread(runs.map((r) => r.latencyMs.p95));
      const p99 = spread(runs.map((r) => r.latencyMs.p99));
      const errors = runs.reduce((sum, r) => sum + r.errors.total, 0);
      record({
        figure: 4,
        title: `End to end: ${tokens.districts.length} districts, mixed scenario, ${scenario.rate} req/s open model, ${scenario.durationSeconds} s`,
        goal: 'p95 <= 10 ms, p99 <= 25 ms, 0 errors',
        value: `p95 ${formatSpread(p95, ' ms')}; p99 ${formatSpread(p99, ' ms')}; p50 ${spread(runs.map((r) => r.latencyMs.p50)).median} ms; errors ${errors}`,
        met: p95.median <= 10 && p99.median <= 25 && errors === 0,
        loadBefore,
        cpuMsPerRequest: cpuSpreads(cpuRuns),
        details: runs.map((r, run) => ({
          cpuMsPerRequest: cpuRuns[run]!.cpuMsPerRequest,
          cores: cpuRuns[run]!.cores,
          latencyMs: r.latencyMs,
          errors: r.errors,
          achievedRate: r.achievedRate,
          byOperation: r.byOperation,
          schedulerLagMs: r.schedulerLagMs,
        })),
      });
    }

    if (options.parts.includes(5)) {
      const loadBefore = load();
      const hotScenario: Scenario = { ...(await loadScenario('noisy-neighbour')), durationSeconds: options.noisySeconds };
      const shares = districtShares(hotScenario, tokens);
      const hot = shares.reduce((a, b) => (b.share > a.share ? b : a)).district.slug;
      // Baseline: the same districts, each at the others' per-district rate, without the hot district's surplus.
      const perOther = hotScenario.rate * Math.min(...shares.map((s) => s.share));
      const baseline: Scenario = { ...hotScenario, mix: { kind: 'uniform' }, rate: Math.round(perOther * shares.length * 100) / 100 };
      const othersP95 = async (scenario: Scenario, label: string, run: number) => {
        const latencies: number[] = [];
        const report = await runScenario(scenario, tokens, {
          warmupSeconds: 5,
          onOutcome: (o) => o.district !== hot && latencies.push(o.latencyMs),
        });
        await writeRunFiles(report, scenario, join(outDir, `noisy-${label}-${run + 1}`));
        return { p95: summarize(latencies).p95, errors: report.errors.total };
      };
      const runs = [];
      for (let run = 0; run < options.runs; run++) {
        const base = await othersP95(baseline, 'baseline', run);
        const withHot = await othersP95(hotScenario, 'hot', run);
        runs.push({ baselineP95: base.p95, hotP95: withHot.p95, rise: withHot.p95 / base.p95 - 1, errors: base.errors + withHot.errors });
        console.log(`  noisy run ${run + 1}: others' p95 ${base.p95} -> ${withHot.p95} ms (load ${load()})`);
      }
      const rise = spread(
        runs.map((r) => r.rise * 100),
        1,
      );
      record({
        figure: 5,
        title: `Noisy neighbour: ${hot} at 10x the rate of each of ${shares.length - 1} others (${baseline.rate}/s -> ${hotScenario.rate}/s in all)`,
        goal: "others' p95 rises < 20 %",
        value: `${formatSpread(rise, ' %')}; others' p95 ${spread(runs.map((r) => r.baselineP95)).median} -> ${spread(runs.map((r) => r.hotP95)).median} ms`,
        met: rise.median < 20,
        loadBefore,
        details: runs,
      });
    }

    if (options.parts.includes(6)) {
      const loadBefore = load();
      const scenario: Scenario = { ...(await loadScenario('mixed')), durationSeconds: options.cpuSeconds, rate: options.cpuRate };
      const { runs, cpu, checks, errors } = await measureCpuPerProcess({
        scenario,
        tokens,
        runs: options.runs,
        listGroups,
        load,
        onRun: (run, index) => console.log(`  cpu run ${index + 1}: ${formatRunCpu(run)} (load ${load()})`),
      });
      record({
        figure: 6,
        title: `CPU ms per request of every process (utime + stime from /proc): mixed scenario, ${scenario.rate} req/s, ${scenario.durationSeconds} s after 10 s of warm-up, ${topology}`,
        goal: 'students <= 0.8 ms, staff and districts <= 0.5 ms, gateway <= 1.0 ms, each subgraph <= 1.5x PostgreSQL',
        value: `${checks.filter((c) => !c.met).length} of ${checks.length} missed; platform ${cpu.platform!.median} ms per request, generator ${cpu.generator?.median} ms (median of ${options.runs}); CPU ceiling ${cpuCeilingRate(cpu, cpus().length)} req/s on ${cpus().length} cores${errors ? `; ${errors} errors in the runs: not comparable, measure on a quieter machine` : ''}`,
        met: checks.every((c) => c.met),
        loadBefore,
        checks,
        cpuMsPerRequest: cpu,
        details: runs.map(cpuRunDetails),
      });
    }

    if (options.parts.includes(7)) {
      if (options.inProcess) throw new Error('part 7 measures the gateway process: run it without --in-process');
      const loadBefore = load();
      const hive = await startHiveGatewayProcess(join(outDir, 'hive-gateway.log'), profiling);
      try {
        const scenario: Scenario = { ...(await loadScenario('mixed')), durationSeconds: options.hiveSeconds, rate: options.e2eRate };
        const result = await compareWithHiveGateway({
          platformPid: platform.pid,
          gatewayUrl: platform.gatewayUrl,
          hive,
          scenario,
          tokens,
          runs: options.runs,
          warmupSeconds: 10,
          onRun: (r) => console.log(`  ${r.side}: ${r.gatewayCpuMs} ms CPU/request, p95 ${r.p95} ms, errors ${r.errors} (load ${r.load})`),
        });
        record({
          figure: 7,
          title: `Gateway CPU per request beside Hive Gateway: mixed, ${scenario.rate} req/s, ${scenario.durationSeconds} s runs, alternating`,
          goal: '<= 1.0 ms and <= Hive Gateway',
          value: `${formatSpread(result.gateway.cpuMs, ' ms')}; Hive Gateway ${formatSpread(result.hive.cpuMs, ' ms')}; ratio ${result.ratio}; p95 ${result.gateway.p95.median} vs ${result.hive.p95.median} ms; errors ${result.gateway.errors} / ${result.hive.errors}`,
          met: result.gateway.cpuMs.median <= 1 && result.ratio <= 1 && result.gateway.errors === 0,
          loadBefore,
          details: result,
        });
      } finally {
        await hive.stop();
      }
    }

    // The box's sustained rate, when figure 8 measures it in this run (figure 11 floods at a multiple of it).
    let measuredCapacity: number | undefined;
    if (options.parts.includes(8)) {
      const loadBefore = load();
      const rates = stepRates(options.capacityStart, options.capacityStep, options.capacityMax);
      const capacity = await measureCapacity({
        scenario: await loadScenario('mixed'),
        tokens,
        rates,
        stepSeconds: options.capacitySeconds,
        warmupSeconds: 5,
        retries: options.capacityRetries,
        listGroups,
        load,
        onStep: (step) => console.log(`  ${formatStep(step)}`),
      });
      const { sustained, atSustained, failed } = capacity;
      measuredCapacity = sustained;
      const chart = join(outDir, 'capacity.svg');
      const title = `Capacity: mixed scenario, ${options.capacitySeconds} s a step, ${topology}; sustained ${sustained} req/s (load ${load()})`;
      const marks = { sustainedRate: sustained, goalRate: CAPACITY_GOAL_RATE, p99LimitMs: CAPACITY_P99_LIMIT_MS, title };
      writeFileSync(chart, renderCapacityChart(capacity.decisive, marks));
      record({
        figure: 8,
        title: `Capacity: the highest open-model rate with p99 <= ${CAPACITY_P99_LIMIT_MS} ms and 0 errors, mixed scenario, steps of ${options.capacityStep}/s from ${options.capacityStart}/s, ${options.capacitySeconds} s each, a failed step tried ${options.capacityRetries + 1} times`,
        goal: `>= ${CAPACITY_GOAL_RATE} req/s`,
        value: `${sustained} req/s${atSustained ? ` (p99 ${atSustained.latencyMs.p99} ms, cores used ${formatCpu(atSustained.cores, '')})` : ''}; ${failed ? `next step ${failed.rate}/s failed: ${failed.reasons.join(', ')}` : `no step failed up to ${rates.at(-1)}/s`}; chart ${chart}`,
        met: sustained >= CAPACITY_GOAL_RATE,
        loadBefore,
        ...(atSustained && {
          cpuMsPerRequest: Object.fromEntries(Object.entries(atSustained.cpuMsPerRequest).map(([g, ms]) => [g, spread([ms])])),
        }),
        details: { sustained, chart, steps: capacity.steps },
      });
    }

    if (options.parts.includes(9)) {
      const figure = await reconcileBenchFigure({
        adminUrl: databases.server.adminUrl,
        dataDir: config.dataDir,
        runs: options.runs,
        log: console.log,
      });
      record({ figure: 9, ...figure });
    }

    if (options.parts.includes(10)) {
      const onboarding = await measureOnboarding({
        adminUrl: databases.server.adminUrl,
        dataDir: config.dataDir,
        outDir,
        districts: options.lifecycleDistricts,
        log: console.log,
      });
      record({
        figure: 10,
        title: `District lifecycle: onboarding ${onboarding.districts} districts from a CSV file (district create --from-file) into fresh service databases, then the same file again`,
        goal: `< ${ONBOARDING_GOAL_SECONDS} s`,
        value: `${onboarding.commandSeconds} s for the whole command (its own summary ${onboarding.reportedSeconds} s), ${onboarding.created} created; rerun ${onboarding.rerunSeconds} s, ${onboarding.rerunCreated} created`,
        met:
          onboarding.commandSeconds < ONBOARDING_GOAL_SECONDS &&
          onboarding.created === onboarding.districts &&
          onboarding.rerunCreated === 0,
        loadBefore: onboarding.loadBefore,
        details: onboarding,
      });

      const data = await measureDataLifecycle({
        adminUrl: databases.server.adminUrl,
        dataDir: config.dataDir,
        outDir,
        runs: options.lifecycleRuns,
        log: console.log,
      });
      const exportRate = spread(
        data.runs.map((r) => r.exportRowsPerSecond),
        0,
      );
      const restoreRate = spread(
        data.runs.map((r) => r.restoreRowsPerSecond),
        0,
      );
      const rate = (s: Spread) =>
        `${s.median.toLocaleString('en-US')} rows/s (min ${s.min.toLocaleString('en-US')}, max ${s.max.toLocaleString('en-US')})`;
      record({
        figure: 10,
        title: `District lifecycle: export, offboard (with that export) and restore of ${data.district.slug}, ${data.district.students.toLocaleString('en-US')} students, ${data.rows.toLocaleString('en-US')} rows in all; ${options.lifecycleRuns} cycle(s)`,
        goal: `reported (rows/s) for a district of >= ${EXPORT_MIN_STUDENTS.toLocaleString('en-US')} students`,
        value: `export ${rate(exportRate)}; restore ${rate(restoreRate)}; offboard ${
          spread(
            data.runs.map((r) => r.offboardSeconds),
            1,
          ).median
        } s${data.buildSeconds ? `; data set seeded in ${data.buildSeconds} s` : ''}`,
        met: data.district.students >= EXPORT_MIN_STUDENTS,
        loadBefore: data.runs[0]!.loadBefore,
        details: data,
      });

      const propagating = tokens.districts[0]!;
      const propagation = await measurePropagationAcrossGatewayProcesses({
        config: platform.config,
        redisUrl: redisUrl!,
        outDir,
        token: propagating.token,
        tenantId: propagating.tenantId,
        directoryOwner: owners[directoryService().name]!,
        rounds: 20,
        log: console.log,
      });
      record({
        figure: 10,
        title: `District lifecycle: suspension propagation, publish to 403 on both of 2 gateway processes sharing one Redis, ${propagation.rounds} suspensions of ${propagating.slug} (status TTL 60 s)`,
        goal: `p95 < ${PROPAGATION_GOAL_MS} ms`,
        value: `p95 ${propagation.summary.p95} ms; p50 ${propagation.summary.p50} ms, max ${propagation.summary.max} ms`,
        met: propagation.summary.p95 < PROPAGATION_GOAL_MS,
        loadBefore: propagation.loadBefore,
        details: propagation,
      });
    }

    if (options.parts.includes(11)) {
      const loadBefore = load();
      const capacity = measuredCapacity ?? options.overloadCapacity ?? DEFAULT_CAPACITY;
      const capacitySource = measuredCapacity
        ? 'figure 8, this run'
        : options.overloadCapacity
          ? '--overload-capacity'
          : "figure 8's full-set figure";
      const hotRate = capacity * options.overloadFactor;
      const { hot, runs } = await measureOverloadFairness({
        scenario: await loadScenario('noisy-neighbour'),
        tokens,
        tokensFile: join(outDir, 'tokens.json'),
        outDir,
        runs: options.runs,
        seconds: options.overloadSeconds,
        othersRate: options.overloadOthersRate,
        hotRate,
        load,
        log: console.log,
      });
      const rise = spread(
        runs.map((r) => r.rise * 100),
        1,
      );
      const othersErrors = runs.reduce((sum, r) => sum + r.othersErrors, 0);
      const othersRequests = runs.reduce((sum, r) => sum + r.othersRequests, 0);
      const share429 = spread(
        runs.map((r) => r.hot.share429 * 100),
        1,
      );
      const { districtRate, districtConcurrency } = platform.config;
      record({
        figure: 11,
        title: `Overload fairness: ${hot} flooding at ${options.overloadFactor}x the box's capacity (${hotRate}/s; capacity ${capacity}/s from ${capacitySource}) beside ${options.overloadOthersRate}/s over the scenario's districts; district limits ${districtRate.perSecond}/s + ${districtRate.burst} per 10 s, ${districtConcurrency.maxInFlight} running + ${districtConcurrency.maxQueued} waiting`,
        goal: "others' p95 rises < 20 %, others' errors 0, the hot district refused with 429",
        value: `${formatSpread(rise, ' %')}; others' p95 ${spread(runs.map((r) => r.baselineP95)).median} -> ${spread(runs.map((r) => r.duringP95)).median} ms; others' errors ${othersErrors} of ${othersRequests}; hot district 429 share ${formatSpread(share429, ' %')} at ${spread(runs.map((r) => r.hot.achievedRate)).median}/s sent, its other outcomes ${JSON.stringify(runs.map((r) => ({ ...r.hot.errors, http_429: undefined })))}`,
        met: rise.median < 20 && othersErrors === 0 && share429.median > 50,
        loadBefore,
        details: { hot, capacity, capacitySource, hotRate, runs },
      });
    }

    if (options.parts.includes(12)) {
      const loadBefore = load();
      const scenario: Scenario = { ...(await loadScenario('mixed')), durationSeconds: options.telemetrySeconds, rate: options.e2eRate };
      const cost = await measureTelemetryCost({
        config,
        databases: databases.byService,
        scenario,
        tokens,
        runs: options.runs,
        warmupSeconds: 10,
        outDir,
        onRun: (r) =>
          console.log(
            `  ${r.side}: p50 ${r.p50} ms, p95 ${r.p95} ms, ${r.cpuMsPerRequest.total} ms CPU/request, errors ${r.errors} (load ${r.load})`,
          ),
      });
      const side = (name: TelemetrySide) =>
        `${name} p50 ${formatSpread(cost.sides[name].p50, ' ms')}, CPU ${formatSpread(cost.sides[name].cpuMs, ' ms')}/request`;
      const errors = TELEMETRY_SIDES.reduce((sum, name) => sum + cost.sides[name].errors, 0);
      record({
        figure: 12,
        title: `Telemetry cost per request: four sets of the services side by side (no telemetry; Prometheus metrics scraped every 5 s; metrics and every request traced, exported over OTLP; the same with one request in ten traced), mixed, ${scenario.rate} req/s, ${scenario.durationSeconds} s runs, rotating`,
        goal: 'reported: p50 and CPU per request with and without (no errors)',
        value: `${TELEMETRY_SIDES.map(side).join('; ')}; ${Object.entries(cost.added)
          .map(([name, added]) => `${name} adds ${added.p50Ms} ms p50, ${added.cpuMs} ms CPU`)
          .join('; ')}; ${cost.exported.requests} OTLP exports, ${(cost.exported.bytes / 1e6).toFixed(1)} MB`,
        met: errors === 0,
        loadBefore,
        details: cost,
      });
    }

    console.log(`\nmachine: ${machine.cores} cores, ${postgres}; platform: ${topology}; load average after: ${load()}`);
    for (const f of figures) {
      console.log(`${f.met ? 'met   ' : 'MISSED'} ${f.figure}. ${f.goal}: ${f.value}`);
      for (const c of f.checks ?? []) console.log(`         ${c.met ? 'met   ' : 'MISSED'} ${c.name} ${c.goal}: ${c.value}`);
      if (f.cpuMsPerRequest) console.log(`         CPU ms per request: ${formatCpuSpreads(f.cpuMsPerRequest)}`);
    }
    const unmeasured = options.parts.filter((n) => !figures.some((f) => f.figure === n));
    if (unmeasured.length) console.log(`not measured: ${unmeasured.map((n) => `${n} (${PARTS[n]})`).join(', ')}`);
    console.log(`\n${join(outDir, 'bench.json')}`);
    return figures.every((f) => f.met) ? 0 : 1;
  } finally {
    await Promise.all(Object.values(owners).map((c) => c.end().catch(() => {})));
    await platform.stop();
    await databases.close();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`bench failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(2);
  },
);
