/**
 * `npm run bench [-- --parts 1,2,3,4,5,9 --runs 3]`: the figures of the load issue, measured against the
 * platform configured by the environment (run `npm run load:seed` with the same environment first). Starts
 * the platform in its own process, writes a tokens file, measures, prints each figure against its goal with
 * the machine and load, and writes bench.json (plus each load run's report and chart) to the output folder.
 * Exits 1 when a goal is missed.
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
import { startPlatformProcess } from './platform-process.ts';
import { reconcileBenchFigure } from './reconcile.ts';
import { formatSpread, spread, summarize } from './stats.ts';

interface Figure {
  figure: number;
  title: string;
  goal: string;
  value: string;
  met: boolean;
  loadBefore: string;
  details: unknown;
}

const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

const parts = (value: string): number[] => {
  const list = value.split(',').map(Number);
  if (list.some((n) => !Number.isInteger(n) || !((n >= 1 && n <= 5) || n === 9)))
    throw new InvalidArgumentError('parts are numbers from 1 to 5 and 9, comma-separated');
  return list;
};
const positiveInt = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
};

async function main(): Promise<number> {
  const program = new Command('bench')
    .description('Measure the five figures of the load issue against the configured (seeded) platform')
    .option(
      '--parts <list>',
      '1 RLS vs explicit, 2 tenant-context overhead, 3 gateway hop, 4 end to end, 5 noisy neighbour, 9 reconcile throughput',
      parts,
      [1, 2, 3, 4, 5, 9],
    )
    .option('--runs <n>', 'repetitions of each figure (min/median/max)', positiveInt, 3)
    .option('--e2e-seconds <n>', 'duration of each end-to-end run (figure 4)', positiveInt, 60)
    .option('--e2e-rate <n>', 'arrivals per second of figure 4 (the goal is stated at 100)', positiveInt, 100)
    .option('--noisy-seconds <n>', 'duration of each noisy-neighbour run, baseline and hot (figure 5)', positiveInt, 30)
    .option('--connections <n>', 'connections per path for figure 1', positiveInt, 4)
    .option('--cpu-prof', 'run the platform with --cpu-prof; profiles go to <out>/profiles')
    .option(
      '--split',
      'the gateway and each subgraph in a process of their own (npm start, as deployed), not all in one (npm start -- --in-process)',
    )
    .option('--out <dir>', 'output folder (default load/out/bench-<time>)')
    .parse();
  const options = program.opts<{
    parts: number[];
    runs: number;
    e2eSeconds: number;
    e2eRate: number;
    noisySeconds: number;
    connections: number;
    cpuProf?: boolean;
    split?: boolean;
    out?: string;
  }>();
  const outDir = resolve(options.out ?? join('load/out', `bench-${new Date().toISOString().replace(/[:.]/g, '-')}`));
  await mkdir(outDir, { recursive: true });
  const config = readConfig();
  if (config.jwt.jwksUrl || config.jwt.jwksFile) throw new Error('bench signs development tokens: unset JWKS_URL / JWKS_FILE');

  console.log(`bench: ${cpus().length} cores (${cpus()[0]?.model.trim()}), load average ${load()}; output ${outDir}`);
  const profiling = options.cpuProf ? [`--cpu-prof`, `--cpu-prof-dir=${join(outDir, 'profiles')}`] : [];
  const platform = await startPlatformProcess({}, join(outDir, 'platform.log'), { inProcess: !options.split, nodeOptions: profiling });
  const topology = options.split ? 'one process per service (npm start)' : 'one process (npm start -- --in-process)';
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
            goal: '>= 0.9',
            value: `${formatSpread(ratio)}; tenant ${formatSpread(spread(result.tenantPerSecond, 0), ' tx/s')}, explicit ${formatSpread(spread(result.explicitPerSecond, 0), ' tx/s')}, ${options.connections} connections each; RLS alone (vs explicit + the same set_config) ${formatSpread(spread(result.rlsOnlyRatios))}`,
            met: ratio.median >= 0.9,
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
      for (let run = 0; run < options.runs; run++) {
        const report = await runScenario(scenario, tokens, { warmupSeconds: 10 });
        await writeRunFiles(report, scenario, join(outDir, `e2e-${run + 1}`));
        runs.push(report);
        console.log(
          `  e2e run ${run + 1}: p50 ${report.latencyMs.p50} p95 ${report.latencyMs.p95} p99 ${report.latencyMs.p99} ms, errors ${report.errors.total}, ${report.achievedRate}/s (load ${load()})`,
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
        details: runs.map((r) => ({
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

    if (options.parts.includes(9)) {
      const figure = await reconcileBenchFigure({
        adminUrl: databases.server.adminUrl,
        dataDir: config.dataDir,
        runs: options.runs,
        log: console.log,
      });
      record({ figure: 9, ...figure });
    }

    console.log(`\nmachine: ${machine.cores} cores, ${postgres}; load average after: ${load()}`);
    for (const f of figures) console.log(`${f.met ? 'met   ' : 'MISSED'} ${f.figure}. ${f.goal}: ${f.value}`);
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
