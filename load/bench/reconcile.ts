/**
 * Bench part 9: reconcile throughput. A consolidated data set of its own on the bench's PostgreSQL server
 * (legacy databases `bench_reconcile_district_<slug>`, service databases under the prefix `bench_reconcile`),
 * built on the first run (~1–2 minutes for the default 8 districts × 20,000 students = 1,039,280 rows per
 * side) and reused by later runs; then `reconcileDistricts` over every district, `runs` times: rows per
 * second of wall time on each side, and the server's CPU per row compared, which the other sessions on a
 * shared machine do not inflate the way they do wall time. A run that does not match voids the figure.
 */
import { cpus, loadavg } from 'node:os';
import pLimit from 'p-limit';
import pg from 'pg';
import { readRegistry } from '../../config/registry.ts';
import { migrateService, provisionDatabases } from '../../database/database.ts';
import { consolidate } from '../../tools/consolidation/consolidate.ts';
import { reconcileDistricts } from '../../tools/consolidation/reconcile.ts';
import { TABLES, type Service } from '../../tools/consolidation/tables.ts';
import { fixtureDistricts, generateLegacyDistrict } from '../../tools/legacy/fixtures.ts';
import { SourceTemplate } from '../../tools/legacy/source-url.ts';
import { postgresServerCpuMs } from './process-cpu.ts';
import { spread, type Spread } from './stats.ts';

const PREFIX = 'bench_reconcile';
/** The reconcile goal of the load issue, per side. */
export const RECONCILE_GOAL_ROWS_PER_SECOND = 1_000_000;

export interface ReconcileDataSet {
  source: SourceTemplate;
  targets: Record<Service, string>;
  slugs: string[];
  /** Seconds spent generating and consolidating (0 when reused). */
  buildSeconds: number;
}

export interface ReconcileFigure {
  rowsPerSide: number;
  districts: number;
  jobs: number;
  sourceRowsPerSecond: Spread;
  targetRowsPerSecond: Spread;
  /** The lower side's median over the goal. */
  ratioToGoal: number;
  /**
   * PostgreSQL's CPU (all processes, both sides: they share the server) per row compared, in µs: what the
   * figure would be with every core on the work, whatever else the machine runs.
   */
  serverCpuUsPerRow: Spread;
  /** Rows per second per side that the server's CPU per row allows on all of this machine's cores. */
  rowsPerSecondAtFullCores: number;
  cores: number;
  buildSeconds: number;
  loadBefore: string;
  loadAfter: string;
}

const withDatabase = (url: string, database: string) => {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
};

const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

/** Finished (district, table) pairs across the targets; 0 where no checkpoint table exists yet. */
async function checkpointedPairs(targets: Record<Service, string>): Promise<number> {
  let pairs = 0;
  for (const url of Object.values(targets)) {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query<{ present: boolean }>(`select to_regclass('consolidation.checkpoint') is not null as present`);
      if (rows[0]!.present)
        pairs += (await client.query<{ n: number }>('select count(*)::int as n from consolidation.checkpoint')).rows[0]!.n;
    } finally {
      await client.end();
    }
  }
  return pairs;
}

/** The legacy districts and their consolidated copy; generated and consolidated only where missing. */
export async function reconcileDataSet(options: {
  adminUrl: string;
  dataDir: string;
  districts: number;
  students: number;
  jobs: number;
  log: (line: string) => void;
}): Promise<ReconcileDataSet> {
  const started = performance.now();
  const source = new SourceTemplate(withDatabase(options.adminUrl, `${PREFIX}_district_SLUG`).replace('SLUG', '{slug}'));
  const districts = fixtureDistricts(options.districts);
  const slugs = districts.map((d) => d.slug);
  const existing = new Set(await source.listSlugs());
  const missing = districts.filter((d) => !existing.has(d.slug));
  if (missing.length) options.log(`part 9: generating ${missing.length} legacy districts × ${options.students} students…`);
  const limit = pLimit(options.jobs);
  await limit.map(missing, (district) =>
    generateLegacyDistrict({ source, students: options.students, seed: 'bench', replace: true }, district),
  );
  const provisioned = await provisionDatabases({
    adminUrl: options.adminUrl,
    dataDir: options.dataDir,
    prefix: PREFIX,
    services: readRegistry(),
  });
  for (const database of provisioned) await migrateService(database);
  const targets = Object.fromEntries(provisioned.map((p) => [p.service, p.ownerUrl]));
  // A legacy district regenerated from the same seed holds the same rows, so a consolidated copy stays
  // valid (measureReconcile refuses one that does not match).
  const consolidating = (await checkpointedPairs(targets)) < slugs.length * TABLES.length;
  if (consolidating) {
    options.log(`part 9: consolidating ${slugs.length} districts…`);
    await consolidate({ source, targets, districts: slugs, jobs: options.jobs, statusTtlMs: 0 });
  }
  const built = missing.length > 0 || consolidating;
  return { source, targets, slugs, buildSeconds: built ? +((performance.now() - started) / 1000).toFixed(1) : 0 };
}

/** `runs` full reconciliations of the data set; each must match. */
export async function measureReconcile(dataSet: ReconcileDataSet, runs: number, jobs: number, buildSeconds = dataSet.buildSeconds) {
  const loadBefore = load();
  const source: number[] = [];
  const target: number[] = [];
  const cpuUsPerRow: number[] = [];
  let rowsPerSide = 0;
  // Source and target share the bench's server; one connection reads its CPU.
  const probe = new pg.Client({ connectionString: dataSet.source.maintenanceUrl });
  await probe.connect();
  try {
    for (let run = 0; run < runs; run++) {
      const cpuBefore = await postgresServerCpuMs(probe);
      const report = await reconcileDistricts({ source: dataSet.source, targets: dataSet.targets, slugs: dataSet.slugs, jobs });
      const cpuMs = (await postgresServerCpuMs(probe)) - cpuBefore;
      if (!report.match) throw new Error('part 9: the reconcile data set does not reconcile clean; drop the bench_reconcile databases');
      source.push(report.sourceRowsPerSecond);
      target.push(report.targetRowsPerSecond);
      cpuUsPerRow.push((cpuMs * 1000) / report.sourceRows);
      rowsPerSide = report.sourceRows;
    }
  } finally {
    await probe.end();
  }
  const sourceRowsPerSecond = spread(source, 0);
  const targetRowsPerSecond = spread(target, 0);
  const serverCpuUsPerRow = spread(cpuUsPerRow, 2);
  const figure: ReconcileFigure = {
    rowsPerSide,
    districts: dataSet.slugs.length,
    jobs,
    sourceRowsPerSecond,
    targetRowsPerSecond,
    ratioToGoal: +(Math.min(sourceRowsPerSecond.median, targetRowsPerSecond.median) / RECONCILE_GOAL_ROWS_PER_SECOND).toFixed(2),
    serverCpuUsPerRow,
    rowsPerSecondAtFullCores: Math.round((cpus().length * 1_000_000) / serverCpuUsPerRow.median),
    cores: cpus().length,
    buildSeconds,
    loadBefore,
    loadAfter: load(),
  };
  return figure;
}

/** Figure 9 of `npm run bench`, in the shape bench.ts records. */
export async function reconcileBenchFigure(options: { adminUrl: string; dataDir: string; runs: number; log: (line: string) => void }) {
  const dataSet = await reconcileDataSet({ ...options, districts: 8, students: 20_000, jobs: 2 });
  const figure = await measureReconcile(dataSet, options.runs, 2);
  const rate = (s: Spread) =>
    `${s.median.toLocaleString('en-US')} rows/s (min ${s.min.toLocaleString('en-US')}, max ${s.max.toLocaleString('en-US')})`;
  return {
    title: `Reconcile throughput: ${figure.rowsPerSide.toLocaleString('en-US')} rows per side, ${figure.districts} districts, ${figure.jobs} at once, ${options.runs} runs`,
    goal: `>= ${RECONCILE_GOAL_ROWS_PER_SECOND.toLocaleString('en-US')} rows/s per side`,
    value: `source ${rate(figure.sourceRowsPerSecond)}, target ${rate(figure.targetRowsPerSecond)}; ${figure.ratioToGoal}x the goal; PostgreSQL CPU ${figure.serverCpuUsPerRow.median} µs per row, both sides (min ${figure.serverCpuUsPerRow.min}, max ${figure.serverCpuUsPerRow.max}): ${figure.rowsPerSecondAtFullCores.toLocaleString('en-US')} rows/s per side on ${figure.cores} idle cores${figure.buildSeconds ? `; data set built in ${figure.buildSeconds} s` : ''}`,
    met: figure.ratioToGoal >= 1,
    loadBefore: figure.loadBefore,
    details: figure,
  };
}
