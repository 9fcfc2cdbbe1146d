/**
 * `npm run bench:consolidate -- [--districts 50] [--students 20000] [--jobs 2]`: a benchmark, not a test.
 * On one PostgreSQL server (BENCH_DATABASE_URL, default the machine's PostgreSQL 15) it generates the legacy
 * districts, then times, with the same number of districts at once:
 *   baseline     `pg_dump --data-only | psql` of every legacy database into a scratch copy of its schema
 *                (schema created beforehand, untimed): no transformation, the floor to match;
 *   consolidate  into freshly migrated service databases;
 *   reconcile    of every district × table, rows digested per second on each side, and the PostgreSQL server's
 *                CPU per row over it (every backend of the server: on a shared server, others' queries too).
 * Prints the figures, the ratios against the goals and the machine, as JSON and as lines for the README.
 */
import '../config/node-version.ts';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { environmentWith, readConfig } from '../config/config.ts';
import pLimit from 'p-limit';
import pg, { escapeIdentifier } from 'pg';
import { migrateService, provisionDatabases } from '../database/database.ts';
import { readRegistry } from '../config/registry.ts';
import { consolidate } from '../tools/consolidation/consolidate.ts';
import { positiveInt } from '../tools/consolidation/cli-options.ts';
import { barsProgress } from '../tools/consolidation/progress.ts';
import { reconcileDistricts } from '../tools/consolidation/reconcile.ts';
import { postgresServerCpuMs } from './bench/process-cpu.ts';
import { SERVICES, type Service } from '../tools/consolidation/tables.ts';
import { fixtureDistricts, generateLegacyDistrict } from '../tools/legacy/fixtures.ts';
import { SourceTemplate } from '../tools/legacy/source-url.ts';

interface BenchOptions {
  databaseUrl: string;
  districts: number;
  students: number;
  jobs: number;
  reuseLegacy: boolean;
  keepLegacy: boolean;
}

const PREFIX = 'bench_k12';

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}

/** pg_dump refuses servers of a newer major: say so plainly instead of timing a failure. */
function checkPgDump(serverMajor: number): string {
  const result = spawnSync('pg_dump', ['--version'], { encoding: 'utf8' });
  if (result.error) throw new Error('pg_dump is not installed (the baseline needs pg_dump and psql)');
  const major = Number(/(\d+)(?:\.\d+)?/.exec(result.stdout)?.[1]);
  if (!(major >= serverMajor)) {
    throw new Error(
      `pg_dump ${major} cannot dump PostgreSQL ${serverMajor}; point BENCH_DATABASE_URL at a PostgreSQL ${major} server or install pg_dump ${serverMajor}`,
    );
  }
  return result.stdout.trim();
}

const shell = (script: string, env: Record<string, string>) =>
  new Promise<void>((resolve, reject) => {
    const child = spawn('bash', ['-c', `set -euo pipefail; ${script}`], { env: environmentWith(env), stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`baseline pipeline failed: ${stderr.trim().split('\n')[0]}`))));
  });

/** `work` over `items`, `jobs` at once; after a failure nothing new starts and the failure is thrown. */
async function inParallel<T>(items: T[], jobs: number, work: (item: T) => Promise<unknown>): Promise<void> {
  const limit = pLimit(jobs);
  await limit.map(items, (item) =>
    work(item).catch((error: unknown) => {
      limit.clearQueue();
      throw error;
    }),
  );
}

async function dropDatabases(admin: pg.Client, names: string[]) {
  for (const name of names) await admin.query(`drop database if exists ${escapeIdentifier(name)} with (force)`);
}

async function bench(options: BenchOptions) {
  const admin = new pg.Client({ connectionString: options.databaseUrl });
  await admin.connect();
  try {
    await measure(admin, options);
  } finally {
    await admin.end();
  }
}

async function measure(admin: pg.Client, options: BenchOptions) {
  const version = (await admin.query<{ server_version: string }>('show server_version')).rows[0]!.server_version;
  const pgDump = checkPgDump(Number(version.split('.')[0]));
  const loadAtStart = loadavg().map((n) => n.toFixed(2));
  console.error(`PostgreSQL ${version}; ${pgDump}; ${cpus().length} cores (${cpus()[0]?.model}); load average ${loadAtStart.join(' ')}`);

  const source = new SourceTemplate(
    withDatabase(options.databaseUrl, 'bench_district_{slug}').replace(encodeURIComponent('{slug}'), '{slug}'),
  );
  const districts = fixtureDistricts(options.districts);
  const existing = new Set(await source.listSlugs());
  const missing = options.reuseLegacy ? districts.filter((d) => !existing.has(d.slug)) : districts;
  console.error(`generating ${missing.length} legacy districts × ${options.students} students…`);
  await inParallel(missing, options.jobs, (district) =>
    generateLegacyDistrict({ source, students: options.students, seed: 'bench', replace: true }, district),
  );

  const dataDir = await mkdtemp(join(tmpdir(), 'k12-bench-'));
  const baselineDatabases = districts.map((_, i) => `bench_baseline_${i}`);
  let targets: Record<Service, string> | undefined;
  try {
    // Baseline: the same legacy databases into scratch copies of their schema.
    await dropDatabases(admin, baselineDatabases);
    for (const [i, district] of districts.entries()) {
      await admin.query(`create database ${escapeIdentifier(baselineDatabases[i]!)}`);
      await shell('pg_dump --schema-only --no-owner -d "$SRC" | psql -X -q -v ON_ERROR_STOP=1 -d "$DST"', {
        SRC: source.urlOf(district.slug),
        DST: withDatabase(options.databaseUrl, baselineDatabases[i]!),
      });
    }
    console.error('baseline: pg_dump --data-only | psql …');
    const baselineStarted = performance.now();
    await inParallel([...districts.entries()], options.jobs, ([i, district]) =>
      shell('pg_dump --data-only -d "$SRC" | psql -X -q -v ON_ERROR_STOP=1 -d "$DST"', {
        SRC: source.urlOf(district.slug),
        DST: withDatabase(options.databaseUrl, baselineDatabases[i]!),
      }),
    );
    const baselineSeconds = (performance.now() - baselineStarted) / 1000;

    // Fresh, migrated service databases.
    await dropDatabases(
      admin,
      SERVICES.map((s) => `${PREFIX}_${s}`),
    );
    const provisioned = await provisionDatabases({ adminUrl: options.databaseUrl, dataDir, prefix: PREFIX, services: readRegistry() });
    for (const database of provisioned) await migrateService(database);
    targets = Object.fromEntries(provisioned.map((p) => [p.service, p.ownerUrl]));

    console.error('consolidate …');
    const summary = await consolidate({
      source,
      targets,
      districts: districts.map((d) => d.slug),
      jobs: options.jobs,
      statusTtlMs: 0,
      progress: process.stderr.isTTY ? barsProgress : undefined,
    });
    console.error('reconcile …');
    const serverCpuBefore = await postgresServerCpuMs(admin);
    const report = await reconcileDistricts({ source, targets, slugs: districts.map((d) => d.slug), jobs: options.jobs });
    const reconcileCpuMs = (await postgresServerCpuMs(admin)) - serverCpuBefore;
    if (!report.match) throw new Error('reconcile found differences after consolidate: the benchmark is void');

    const rows = summary.rows;
    const baselineRowsPerSecond = Math.round(rows / baselineSeconds);
    const result = {
      command: `npm run bench:consolidate -- --districts ${options.districts} --students ${options.students} --jobs ${options.jobs}`,
      machine: {
        cores: cpus().length,
        cpu: cpus()[0]?.model,
        postgres: version,
        pgDump,
        loadAverageAtStart: loadAtStart,
        loadAverageAtEnd: loadavg().map((n) => n.toFixed(2)),
      },
      districts: options.districts,
      studentsPerDistrict: options.students,
      rows,
      baseline: { seconds: +baselineSeconds.toFixed(2), rowsPerSecond: baselineRowsPerSecond },
      consolidate: {
        seconds: +summary.seconds.toFixed(2),
        rowsPerSecond: summary.rowsPerSecond,
        ratioToBaseline: +(summary.rowsPerSecond / baselineRowsPerSecond).toFixed(2),
        goal: '≥ 1.0 × baseline',
      },
      reconcile: {
        seconds: +report.seconds.toFixed(2),
        sourceRowsPerSecond: report.sourceRowsPerSecond,
        targetRowsPerSecond: report.targetRowsPerSecond,
        ratioToGoal: +(Math.min(report.sourceRowsPerSecond, report.targetRowsPerSecond) / 1_000_000).toFixed(2),
        goal: '≥ 1,000,000 rows/s per side',
        // Both sides share the server: its CPU per row compared, and the rate per side it allows on every core.
        serverCpuUsPerRow: +((reconcileCpuMs * 1000) / report.sourceRows).toFixed(2),
        rowsPerSecondAtFullCores: Math.round((cpus().length * report.sourceRows * 1000) / reconcileCpuMs),
      },
    };
    console.log(JSON.stringify(result, null, 2));
  } finally {
    await dropDatabases(admin, baselineDatabases);
    if (targets)
      await dropDatabases(
        admin,
        SERVICES.map((s) => `${PREFIX}_${s}`),
      );
    for (const role of [...SERVICES.map((s) => `${PREFIX}_${s}_app`), `${PREFIX}_owner`])
      await admin.query(`drop role if exists ${escapeIdentifier(role)}`);
    if (!options.keepLegacy)
      await dropDatabases(
        admin,
        districts.map((d) => source.databaseOf(d.slug)),
      );
    await rm(dataDir, { recursive: true, force: true });
  }
}

await new Command('bench:consolidate')
  .description('time consolidate and reconcile against pg_dump --data-only | psql on the same legacy databases')
  .option('--database-url <url>', 'admin URL of the PostgreSQL server to use (env BENCH_DATABASE_URL)', readConfig().tools.benchDatabaseUrl)
  .option('--districts <n>', 'legacy districts', positiveInt, 50)
  .option('--students <n>', 'students per district', positiveInt, 20_000)
  .option('--jobs <n>', 'districts at once, for all three measurements', positiveInt, 2)
  .option('--reuse-legacy', 'keep legacy databases generated by an earlier run with --keep-legacy', false)
  .option('--keep-legacy', 'leave the legacy databases for the next run', false)
  .action((options: BenchOptions) => bench(options))
  .parseAsync()
  .catch((error: Error) => {
    console.error(`bench:consolidate: ${error.message}`);
    process.exitCode = 1;
  });
