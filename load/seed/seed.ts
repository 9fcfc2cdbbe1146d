/**
 * `npm run load:seed -- --districts 500 --students 5000000` (or `--preset ci`): scale data in the service
 * databases. Each table goes to the registered service whose migrations create it (schema/subgraphs.json).
 * Each district is registered through the onboarding path (registerDistrict, as the directory service's
 * owner) and its rows go in with COPY as each service's owner, one transaction per district and service, so
 * an interrupted run leaves whole districts only and a re-run with the same arguments resumes.
 */
import '../../config/node-version.ts';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Command, InvalidArgumentError } from 'commander';
import cliProgress from 'cli-progress';
import pLimit from 'p-limit';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { directoryService, readRegistry, serviceOwning } from '../../config/registry.ts';
import { registerDistrict } from '../../tools/onboarding.ts';
import { openServiceDatabases } from './databases.ts';
import { COLUMNS, planDistricts, rowCount, rowsFor, type DistrictPlan, type SeedShape, type SeedTable } from './plan.ts';

export const PRESETS = {
  ci: { districts: 20, students: 20_000 },
  full: { districts: 500, students: 5_000_000 },
} as const;

const positiveInt = (value: string): number => {
  const n = Number(value.replace(/_/g, ''));
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
};

/** Lines in chunks of ~1000 so the stream does not pay per row. */
function* chunked(lines: Iterable<string>, onRows: (n: number) => void): Generator<string> {
  let batch: string[] = [];
  for (const line of lines) {
    batch.push(line);
    if (batch.length === 1000) {
      onRows(batch.length);
      yield batch.join('');
      batch = [];
    }
  }
  if (batch.length) {
    onRows(batch.length);
    yield batch.join('');
  }
}

async function copyRows(
  client: pg.PoolClient,
  table: keyof typeof COLUMNS,
  lines: Iterable<string>,
  onRows: (n: number) => void,
): Promise<void> {
  // Identifiers are constants of this module (COLUMNS), never input.
  const sql = `copy ${table} (${COLUMNS[table].join(', ')}) from stdin`;
  await pipeline(Readable.from(chunked(lines, onRows)), client.query(copyFrom(sql)));
}

/** One transaction per district and service: either all of a district's rows are there, or none. */
async function inTransaction(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<void>): Promise<void> {
  const client = await pool.connect();
  // A dropped connection (server stopped, Ctrl-C) fails the running COPY; without a listener pg would also throw it unhandled.
  const onError = () => {};
  client.on('error', onError);
  try {
    await client.query('begin');
    // A crash loses at most the last transactions, which the resume then redoes.
    await client.query('set local synchronous_commit = off');
    await work(client);
    await client.query('commit');
  } catch (error) {
    await client.query('rollback').catch(() => {});
    throw error;
  } finally {
    client.off('error', onError);
    client.release();
  }
}

type DistrictRows = ReturnType<typeof rowsFor>;

/** Every table the seed fills, in foreign-key order, with its rows for one district. */
const SEED_TABLES: { table: SeedTable; rows: (rows: DistrictRows) => Iterable<string> }[] = [
  { table: 'school', rows: (r) => r.schools() },
  { table: 'student', rows: (r) => r.students() },
  { table: 'enrollment', rows: (r) => r.enrollments() },
  { table: 'staff_member', rows: (r) => r.staff() },
  { table: 'section', rows: (r) => r.sections() },
  { table: 'section_student', rows: (r) => r.roster() },
];

/** One service's share of a district: its tables (in seed order), and the district registration for the directory. */
interface ServiceShare {
  service: string;
  tables: typeof SEED_TABLES;
  registersDistrict: boolean;
}

/** The seed's tables grouped by the registered service whose migrations create each, in registry order. */
function serviceShares(): ServiceShare[] {
  const entries = readRegistry();
  const directory = directoryService(entries).name;
  const owners = new Map(SEED_TABLES.map(({ table }) => [table, serviceOwning(table, entries).name]));
  return entries
    .map((entry) => ({
      service: entry.name,
      tables: SEED_TABLES.filter(({ table }) => owners.get(table) === entry.name),
      registersDistrict: entry.name === directory,
    }))
    .filter((share) => share.tables.length > 0 || share.registersDistrict);
}

/** A share is done when its first table holds rows of the district (each share is one transaction). */
async function isSeeded(pool: pg.Pool, share: ServiceShare, tenantId: string): Promise<boolean> {
  // Identifiers are constants of this module (SEED_TABLES), never input.
  const table = share.tables[0]?.table ?? 'district';
  const { rows } = await pool.query<{ done: boolean }>(`select exists (select 1 from ${table} where tenant_id = $1) as done`, [tenantId]);
  return rows[0]!.done;
}

function poolOf(pools: Record<string, pg.Pool>, service: string): pg.Pool {
  const pool = pools[service];
  if (!pool) throw new Error(`no connection pool for the ${service} service database`);
  return pool;
}

export interface SeedOptions extends SeedShape {
  concurrency: number;
  progress: boolean;
}

export interface SeedSummary {
  districts: number;
  skipped: number;
  rows: number;
  seconds: number;
}

/** `pools`: an owner-role pool per registered service, by service name. */
export async function seedScaleData(pools: Record<string, pg.Pool>, options: SeedOptions): Promise<SeedSummary> {
  const plans = planDistricts(options);
  const shares = serviceShares();
  // Resume: find what is already there before counting the work.
  const todo: { plan: DistrictPlan; shares: ServiceShare[] }[] = [];
  for (const plan of plans) {
    const missing: ServiceShare[] = [];
    for (const share of shares) if (!(await isSeeded(poolOf(pools, share.service), share, plan.tenantId))) missing.push(share);
    if (missing.length) todo.push({ plan, shares: missing });
  }
  const rowsOfShare = (plan: DistrictPlan, share: ServiceShare) =>
    (share.registersDistrict ? 1 : 0) + share.tables.reduce((sum, { table }) => sum + rowCount(plan)[table], 0);
  const totalRows = todo.reduce((sum, { plan, shares: missing }) => sum + missing.reduce((s, share) => s + rowsOfShare(plan, share), 0), 0);
  const bar = new cliProgress.SingleBar(
    {
      format: 'seeding {bar} {percentage}% | {value}/{total} rows | {rate} rows/s | districts {done}/{todo} | ETA {eta_formatted}',
      noTTYOutput: true,
      notTTYSchedule: 5000,
      etaBuffer: 200,
    },
    cliProgress.Presets.shades_classic,
  );
  const started = performance.now();
  let rows = 0;
  let done = 0;
  const rate = () => Math.round(rows / Math.max(0.001, (performance.now() - started) / 1000));
  const showBar = options.progress && todo.length > 0;
  if (showBar) bar.start(totalRows, 0, { rate: 0, done: 0, todo: todo.length });
  const onRows = (n: number) => {
    rows += n;
    if (showBar) bar.update(rows, { rate: rate(), done });
  };

  async function seedDistrict({ plan, shares: missing }: (typeof todo)[number]): Promise<void> {
    const rowsOf = rowsFor(options, plan);
    for (const share of missing) {
      await inTransaction(poolOf(pools, share.service), async (client) => {
        if (share.registersDistrict) {
          await registerDistrict(client, { tenantId: plan.tenantId, slug: plan.slug, name: plan.name }, 'active');
          onRows(1);
        }
        for (const { table, rows } of share.tables) await copyRows(client, table, rows(rowsOf), onRows);
      });
    }
    done++;
  }

  // Largest districts first (the plan's order), `concurrency` at a time; after a failure nothing new starts.
  const limit = pLimit(Math.max(1, options.concurrency));
  try {
    await limit.map(todo, (district) =>
      seedDistrict(district).catch((error: unknown) => {
        limit.clearQueue();
        throw error;
      }),
    );
  } finally {
    if (showBar) {
      bar.update(rows, { rate: rate(), done });
      bar.stop();
    }
  }
  if (todo.length) {
    // Fresh statistics, and a visibility map so index-only scans work from the first request.
    for (const share of shares) await poolOf(pools, share.service).query('vacuum (analyze)');
  }
  return { districts: plans.length, skipped: plans.length - todo.length, rows, seconds: (performance.now() - started) / 1000 };
}

async function main() {
  const program = new Command('load:seed')
    .description('Fill the service databases with scale data (resumable: re-run with the same arguments)')
    .option(
      '--preset <name>',
      `a size preset: ${Object.entries(PRESETS)
        .map(([k, v]) => `${k} (${v.districts} districts, ${v.students} students)`)
        .join(', ')}`,
    )
    .option('--districts <n>', 'number of districts', positiveInt)
    .option('--students <n>', 'total students across all districts (skewed: a few very large districts, a long tail)', positiveInt)
    .option('--seed <text>', 'names the data set; the same seed always generates the same ids', 'k12-load')
    .option('--concurrency <n>', 'districts seeded at once', positiveInt, 2)
    .option('--no-progress', 'no progress bar')
    .parse();
  const options = program.opts<{
    preset?: string;
    districts?: number;
    students?: number;
    seed: string;
    concurrency: number;
    progress: boolean;
  }>();
  const preset = options.preset === undefined ? undefined : PRESETS[options.preset as keyof typeof PRESETS];
  if (options.preset !== undefined && !preset) program.error(`--preset must be one of ${Object.keys(PRESETS).join(', ')}`);
  const districts = options.districts ?? preset?.districts;
  const students = options.students ?? preset?.students;
  if (!districts || !students) return program.error('give --preset, or --districts and --students');
  try {
    planDistricts({ districts, students, seed: options.seed }); // validates the shape before touching a database
  } catch (error) {
    program.error((error as Error).message);
  }

  const databases = await openServiceDatabases();
  process.once('SIGINT', () => {
    // Finished districts are committed; the one in progress rolls back with its connection.
    console.error('\nload:seed interrupted: run the same command again to resume');
    process.exit(130);
  });
  const pools = Object.fromEntries(
    Object.entries(databases.byService).map(([service, db]) => [
      service,
      new pg.Pool({ connectionString: db.ownerUrl, max: options.concurrency + 1 }),
    ]),
  );
  try {
    const summary = await seedScaleData(pools, {
      districts,
      students,
      seed: options.seed,
      concurrency: options.concurrency,
      progress: options.progress,
    });
    const perSecond = summary.rows / Math.max(0.001, summary.seconds);
    console.log(
      `seeded ${summary.districts - summary.skipped} of ${summary.districts} districts (${summary.skipped} already there): ` +
        `${summary.rows.toLocaleString('en-US')} rows in ${summary.seconds.toFixed(1)} s, ${Math.round(perSecond).toLocaleString('en-US')} rows/s`,
    );
  } finally {
    await Promise.all(Object.values(pools).map((pool) => pool.end()));
    await databases.close();
  }
}

if (import.meta.main) {
  main().catch((error: unknown) => {
    console.error(`load:seed failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  });
}
