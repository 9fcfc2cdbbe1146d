/**
 * Bench part 10: the district lifecycle (issue 12), measured with the operator's own commands (`npm run district`,
 * tools/district/cli.ts, run as child processes exactly as an operator runs them) on the bench's PostgreSQL server:
 *
 * - onboarding: `district create --from-file` of 500 districts into fresh service databases of its own (prefix
 *   `bench_lifecycle_onboard`, dropped and migrated again on every run), then the same file again (nothing to do);
 * - export and restore rates: a data set of its own (prefix `bench_lifecycle_data`, `load:seed -- --districts 2
 *   --students 700000`, built on the first run and reused later), its largest district exported, offboarded with
 *   that export and restored from it, which leaves the data set as it was;
 * - suspension propagation: two gateway processes of their own beside the bench platform (its subgraphs), both
 *   subscribed to one Redis, and `measureSuspensionPropagation` over 20 suspensions of one of the bench's districts.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadavg } from 'node:os';
import { Redis } from 'ioredis';
import type pg from 'pg';
import { environmentWith, subgraphVariable, type PlatformConfig } from '../../config/config.ts';
import { directoryService, readRegistry } from '../../config/registry.ts';
import { dropServiceDatabases, migrateService, provisionDatabases, type ServiceDatabase } from '../../database/database.ts';
import { DEV_AUDIENCE, DEV_ISSUER, keyFiles } from '../../dev/keys.ts';
import { DISTRICT_STATUS_CHANNEL } from '../../tenancy/district-status-events.ts';
import { withClient } from '../../tools/operator-cli.ts';
import { freePort, startChild } from './platform-process.ts';
import { measureSuspensionPropagation } from './suspension-propagation.ts';
import type { Summary } from './stats.ts';

const DISTRICT_CLI = fileURLToPath(new URL('../../tools/district/cli.ts', import.meta.url));
const SEED = fileURLToPath(new URL('../seed/seed.ts', import.meta.url));
const GATEWAY_MAIN = fileURLToPath(new URL('../../gateway/main.ts', import.meta.url));

export const ONBOARD_PREFIX = 'bench_lifecycle_onboard';
export const DATA_PREFIX = 'bench_lifecycle_data';
export const ONBOARDING_GOAL_SECONDS = 60;
export const PROPAGATION_GOAL_MS = 1000;
/** The issue's size of the exported district. */
export const EXPORT_MIN_STUDENTS = 400_000;

const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

type Env = Record<string, string | undefined>;

/** `node <args>` to completion; stdout kept, stderr to `logFile` (progress bars, warnings). Rejects on a non-zero exit. */
async function runNode(args: string[], env: Env, logFile: string): Promise<{ stdout: string; seconds: number }> {
  const started = performance.now();
  const log = createWriteStream(logFile, { flags: 'a' });
  log.write(`$ node ${args.join(' ')}\n`);
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.pipe(log, { end: false });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (exitCode) => resolve(exitCode));
  });
  const seconds = (performance.now() - started) / 1000;
  await new Promise<void>((resolve) => log.end(resolve));
  if (code !== 0) throw new Error(`node ${args.slice(0, 3).join(' ')} … exited ${code} (log ${logFile}): ${stdout.slice(-500)}`);
  return { stdout, seconds };
}

/** The district CLI on the service databases under `prefix` (the bench's server and DATA_DIR), `--json` output parsed. */
async function district<T>(prefix: string, args: string[], logFile: string): Promise<{ result: T; seconds: number }> {
  // No REDIS_URL: these districts are no gateway's, nothing is published.
  const env = environmentWith({ DB_PREFIX: prefix, REDIS_URL: undefined, LOG_LEVEL: 'warn' });
  const { stdout, seconds } = await runNode([DISTRICT_CLI, ...args, '--json'], env, logFile);
  return { result: JSON.parse(stdout) as T, seconds };
}

async function freshDatabases(adminUrl: string, dataDir: string, prefix: string): Promise<ServiceDatabase[]> {
  const services = readRegistry();
  await dropServiceDatabases(adminUrl, prefix, services);
  return migratedDatabases(adminUrl, dataDir, prefix);
}

async function migratedDatabases(adminUrl: string, dataDir: string, prefix: string): Promise<ServiceDatabase[]> {
  const databases = await provisionDatabases({ adminUrl, dataDir, prefix, services: readRegistry() });
  for (const database of databases) await migrateService(database);
  return databases;
}

export interface OnboardingResult {
  districts: number;
  /** Wall time of `district create --from-file` (process start to exit). */
  commandSeconds: number;
  /** The command's own `seconds` (from opening the databases to the last commit). */
  reportedSeconds: number;
  created: number;
  /** The same file again: nothing to do. */
  rerunSeconds: number;
  rerunCreated: number;
  loadBefore: string;
}

export async function measureOnboarding(options: {
  adminUrl: string;
  dataDir: string;
  outDir: string;
  districts: number;
  log: (line: string) => void;
}): Promise<OnboardingResult> {
  const logFile = join(options.outDir, 'lifecycle.log');
  options.log(`part 10: fresh service databases (${ONBOARD_PREFIX}_*)…`);
  await freshDatabases(options.adminUrl, options.dataDir, ONBOARD_PREFIX);
  const csv = join(options.outDir, 'districts.csv');
  const rows = Array.from({ length: options.districts }, (_, i) => {
    const n = String(i + 1).padStart(4, '0');
    return `bench-district-${n},"Bench District ${n}, Lifecycle"`;
  });
  await writeFile(csv, `slug,name\n${rows.join('\n')}\n`);
  const loadBefore = load();
  options.log(`part 10: district create --from-file ${csv} (${options.districts} districts)…`);
  type Created = { created: string[]; unchanged: string[]; seconds: number };
  const first = await district<Created>(ONBOARD_PREFIX, ['create', '--from-file', csv, '--no-progress', '--actor', 'bench'], logFile);
  const rerun = await district<Created>(ONBOARD_PREFIX, ['create', '--from-file', csv, '--no-progress', '--actor', 'bench'], logFile);
  return {
    districts: options.districts,
    commandSeconds: +first.seconds.toFixed(2),
    reportedSeconds: first.result.seconds,
    created: first.result.created.length,
    rerunSeconds: +rerun.seconds.toFixed(2),
    rerunCreated: rerun.result.created.length,
    loadBefore,
  };
}

interface DataSetDistrict {
  tenantId: string;
  slug: string;
  students: number;
}

/** The data set's largest district, when it holds at least EXPORT_MIN_STUDENTS students and is no tombstone. */
async function largestDistrict(databases: ServiceDatabase[]): Promise<DataSetDistrict | undefined> {
  const students = databases.find((d) => d.service === 'students');
  if (!students) throw new Error('part 10 needs the students service');
  const largest = await withClient(students.ownerUrl, async (client) => {
    const { rows } = await client.query<{ tenantId: string; students: number }>(
      'select tenant_id as "tenantId", count(*)::int as students from student group by tenant_id order by 2 desc limit 1',
    );
    return rows[0];
  });
  if (!largest || largest.students < EXPORT_MIN_STUDENTS) return undefined;
  const directory = databases.find((d) => d.service === directoryService().name)!;
  const slug = await withClient(directory.ownerUrl, async (client) => {
    const { rows } = await client.query<{ slug: string }>('select slug from district where tenant_id = $1', [largest.tenantId]);
    return rows[0]?.slug;
  });
  return slug && !slug.startsWith('offboarded-') ? { ...largest, slug } : undefined;
}

export interface DataLifecycleRun {
  exportSeconds: number;
  exportRowsPerSecond: number;
  offboardSeconds: number;
  restoreSeconds: number;
  restoreRowsPerSecond: number;
  loadBefore: string;
  loadAfter: string;
}

export interface DataLifecycleResult {
  district: DataSetDistrict;
  rows: number;
  /** Seconds spent seeding the data set (0 when reused). */
  buildSeconds: number;
  runs: DataLifecycleRun[];
}

export async function measureDataLifecycle(options: {
  adminUrl: string;
  dataDir: string;
  outDir: string;
  runs: number;
  log: (line: string) => void;
}): Promise<DataLifecycleResult> {
  const logFile = join(options.outDir, 'lifecycle.log');
  let databases = await migratedDatabases(options.adminUrl, options.dataDir, DATA_PREFIX);
  let found = await largestDistrict(databases);
  let buildSeconds = 0;
  if (!found) {
    // Anything else (a smaller or half-offboarded data set of an interrupted run) is built again from nothing.
    options.log(`part 10: seeding the data set (${DATA_PREFIX}_*: 2 districts, 700,000 students; a few minutes, reused later)…`);
    databases = await freshDatabases(options.adminUrl, options.dataDir, DATA_PREFIX);
    const env = environmentWith({ DB_PREFIX: DATA_PREFIX, LOG_LEVEL: 'warn' });
    buildSeconds = +(await runNode([SEED, '--districts', '2', '--students', '700000'], env, logFile)).seconds.toFixed(1);
    found = await largestDistrict(databases);
    if (!found) throw new Error(`part 10: the seeded data set has no district of ${EXPORT_MIN_STUDENTS} students`);
  }
  options.log(`part 10: district ${found.slug}: ${found.students.toLocaleString('en-US')} students`);
  type Exported = { rows: number; seconds: number; rowsPerSecond: number };
  const runs: DataLifecycleRun[] = [];
  let rows = 0;
  // Offboard and restore need the district suspended; a later run finds it so already.
  await district(DATA_PREFIX, ['suspend', found.tenantId, '--actor', 'bench'], logFile);
  for (let run = 0; run < options.runs; run++) {
    const dir = join(options.outDir, 'lifecycle-export');
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir);
    const loadBefore = load();
    const exported = await district<Exported>(DATA_PREFIX, ['export', found.tenantId, '--out', dir, '--no-progress'], logFile);
    options.log(`  export: ${exported.result.rows} rows in ${exported.result.seconds.toFixed(1)} s (load ${load()})`);
    const offboarded = await district<{ seconds: number }>(
      DATA_PREFIX,
      ['offboard', found.tenantId, '--export', dir, '--no-progress'],
      logFile,
    );
    options.log(`  offboard: ${offboarded.result.seconds.toFixed(1)} s (load ${load()})`);
    const restored = await district<Exported>(DATA_PREFIX, ['restore', found.tenantId, '--from', dir, '--no-progress'], logFile);
    options.log(`  restore: ${restored.result.rows} rows in ${restored.result.seconds.toFixed(1)} s (load ${load()})`);
    if (restored.result.rows !== exported.result.rows)
      throw new Error(`part 10: restored ${restored.result.rows} rows of ${exported.result.rows} exported`);
    rows = exported.result.rows;
    runs.push({
      exportSeconds: +exported.result.seconds.toFixed(2),
      exportRowsPerSecond: exported.result.rowsPerSecond,
      offboardSeconds: +offboarded.result.seconds.toFixed(2),
      restoreSeconds: +restored.result.seconds.toFixed(2),
      restoreRowsPerSecond: restored.result.rowsPerSecond,
      loadBefore,
      loadAfter: load(),
    });
    await rm(dir, { recursive: true, force: true });
  }
  return { district: found, rows, buildSeconds, runs };
}

/** Subscribers of the status channel on `redis` (other gateways may share it: the count is compared, not assumed). */
const subscribers = async (redis: Redis) => Number(((await redis.pubsub('NUMSUB', DISTRICT_STATUS_CHANNEL)) as [string, number])[1]);

export interface PropagationResult {
  gateways: number;
  rounds: number;
  delaysMs: number[];
  summary: Summary;
  loadBefore: string;
}

/**
 * Two gateway processes (gateway/main.ts, configured as `npm start` configures its gateway) in front of the bench
 * platform's subgraphs, both with `redisUrl`; status TTL 60 s, so only the published change explains a refusal.
 */
export async function measurePropagationAcrossGatewayProcesses(options: {
  config: PlatformConfig;
  redisUrl: string;
  outDir: string;
  token: string;
  tenantId: string;
  directoryOwner: pg.ClientBase;
  rounds: number;
  log: (line: string) => void;
}): Promise<PropagationResult> {
  const { config } = options;
  const files = keyFiles(config.dataDir);
  const redis = new Redis(options.redisUrl, { maxRetriesPerRequest: 1 });
  redis.on('error', () => {});
  const gateways: { url: string; stop(): Promise<void> }[] = [];
  try {
    const before = await subscribers(redis);
    for (let i = 1; i <= 2; i++) {
      const port = await freePort();
      const env = environmentWith({
        DATABASE_URL: undefined,
        GATEWAY_PORT: String(port),
        REDIS_URL: options.redisUrl,
        DISTRICT_STATUS_TTL_MS: '60000',
        TENANT_CONTEXT_PRIVATE_KEY_FILE: files.contextPrivate,
        JWKS_FILE: files.devJwks,
        JWT_ISSUER: config.jwt.issuer ?? DEV_ISSUER,
        JWT_AUDIENCE: config.jwt.audience ?? DEV_AUDIENCE,
        LOG_LEVEL: 'warn',
        ...Object.fromEntries(
          readRegistry().map((entry) => [`${subgraphVariable(entry.name)}_ROUTING_URL`, config.subgraphRoutingUrls[entry.name]]),
        ),
      });
      const url = `http://${config.localHost}:${port}`;
      const child = await startChild([GATEWAY_MAIN], env, join(options.outDir, `lifecycle-gateway-${i}.log`), `${url}/health/ready`);
      gateways.push({ url: `${url}/graphql`, stop: child.stop });
    }
    // Ready is not yet subscribed: wait until both subscriptions show on the channel.
    const deadline = Date.now() + 30_000;
    while ((await subscribers(redis)) < before + 2) {
      if (Date.now() > deadline) throw new Error('part 10: the two gateways did not subscribe to the status channel within 30 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    const loadBefore = load();
    options.log(`part 10: ${options.rounds} suspensions across 2 gateway processes (Redis ${new URL(options.redisUrl).host})…`);
    const { delaysMs, summary } = await measureSuspensionPropagation({
      gatewayUrls: gateways.map((g) => g.url),
      token: options.token,
      tenantId: options.tenantId,
      directoryOwner: options.directoryOwner,
      redis,
      rounds: options.rounds,
    });
    return { gateways: gateways.length, rounds: options.rounds, delaysMs, summary, loadBefore };
  } finally {
    await Promise.all(gateways.map((g) => g.stop()));
    redis.disconnect();
  }
}
