/**
 * Consolidation of legacy district databases into the service databases.
 *
 * 1. Preflight, read-only, for every selected district before anything is written: the targets are
 *    migrated and reached as a role that bypasses RLS; each source is reachable and has the legacy schema;
 *    its registration (if any) does not conflict; a district already present in the target with no
 *    checkpoint, or fully checkpointed, must reconcile clean (otherwise: "present with different data").
 *    Any failure stops the whole run with nothing written.
 * 2. Per district (`jobs` at once): register it as `migrating` (or flip it, then wait for the gateway's
 *    status cache to expire); copy each table not yet checkpointed, in foreign-key order, from one
 *    repeatable-read snapshot of the source; reconcile; mark it `active` only when reconcile is clean.
 * A pair (district, table) is one target transaction: delete the district's rows of that table (leftovers
 *    of an unfinished pair), COPY, insert the checkpoint, commit. A crash at any moment rolls the pair back.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pLimit from 'p-limit';
import type pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { registerDistrict, setDistrictStatus, type DistrictStatus } from '../onboarding.ts';
import { redactUrl, type SourceTemplate } from '../legacy/source-url.ts';
import { districtTenantId } from './district-id.ts';
import {
  closeAll,
  ensureCheckpointTable,
  finishedTables,
  openSource,
  openTargets,
  readProfile,
  verifyLegacySchema,
  verifyTargets,
  type TargetClients,
} from './endpoints.ts';
import { silentProgress, type Progress } from './progress.ts';
import { reconcileDistrict, type DistrictReport } from './reconcile.ts';
import { copySourceSql, copyTargetColumns, DIRECTORY, SERVICES, tableName, TABLES, type Service, type TableMapping } from './tables.ts';

export interface ConsolidateOptions {
  source: SourceTemplate;
  /** Owner-role URL of each service database. */
  targets: Record<Service, string>;
  districts: string[] | 'all';
  jobs: number;
  /** How long the gateway may still serve a district's cached `active` status (DISTRICT_STATUS_TTL_MS). */
  statusTtlMs: number;
  progress?: (totalRows: number) => Progress;
  /** Test hooks: fail the running COPY, or hang in it, once this many rows were copied in this run. */
  abortAfterRows?: number;
  stallAfterRows?: number;
}

type DistrictState = 'new' | 'resume' | 'adopt' | 'done';

export interface DistrictPlan {
  slug: string;
  name: string;
  tenantId: string;
  database: string;
  state: DistrictState;
  /** Registered status before this run, or null when not registered. */
  status: DistrictStatus | null;
  rows: Record<string, number>;
  finished: string[];
}

export interface DistrictResult {
  slug: string;
  tenantId: string;
  state: DistrictState;
  copied: { table: string; rows: number; seconds: number }[];
  skipped: string[];
  rows: number;
  seconds: number;
  status: DistrictStatus;
}

export interface ConsolidationSummary {
  districts: DistrictResult[];
  rows: number;
  seconds: number;
  rowsPerSecond: number;
}

export class ConsolidationError extends Error {}

export async function resolveSlugs(source: SourceTemplate, districts: string[] | 'all'): Promise<string[]> {
  if (districts !== 'all') return districts;
  const slugs = await source.listSlugs();
  if (!slugs.length) throw new ConsolidationError(`no district databases match ${redactUrl(source.template)}`);
  return slugs;
}

const describeDifferences = (report: DistrictReport) =>
  report.tables
    .filter((t) => !t.match)
    .map(
      (t) =>
        `${t.table}: ${
          Object.entries(t.counts)
            .filter(([, n]) => n)
            .map(([kind, n]) => `${n} ${kind}`)
            .join(', ') || `${t.sourceRows} vs ${t.targetRows} rows`
        }`,
    )
    .join('; ');

async function planDistrict(source: SourceTemplate, targets: TargetClients, slug: string): Promise<DistrictPlan> {
  const database = source.databaseOf(slug);
  const client = await openSource(source, slug);
  try {
    await verifyLegacySchema(client, database);
    const profile = await readProfile(client, database);
    if (profile.slug !== slug)
      throw new ConsolidationError(`legacy database ${database} says it is district "${profile.slug}", not "${slug}"`);
    const tenantId = districtTenantId(slug);
    const rows: Record<string, number> = {};
    for (const table of TABLES) {
      rows[tableName(table)] = Number((await client.query<{ n: string }>(`select count(*) as n from public.${table.legacy}`)).rows[0]!.n);
    }

    const directory = targets[DIRECTORY]!;
    const registered = await directory.query<{ slug: string; name: string; status: DistrictStatus }>(
      'select slug, name, status from district where tenant_id = $1',
      [tenantId],
    );
    const existing = registered.rows[0];
    if (existing && (existing.slug !== slug || existing.name !== profile.name)) {
      throw new ConsolidationError(
        `district ${slug}: tenant ${tenantId} is already registered as "${existing.slug}" (${existing.name}), not "${slug}" (${profile.name})`,
      );
    }
    const sameSlug = await directory.query<{ tenant_id: string }>('select tenant_id from district where slug = $1 and tenant_id <> $2', [
      slug,
      tenantId,
    ]);
    if (sameSlug.rowCount)
      throw new ConsolidationError(`district ${slug}: the slug is already registered to another tenant (${sameSlug.rows[0]!.tenant_id})`);

    const finished = await finishedTables(targets, tenantId);
    const present: string[] = [];
    for (const table of TABLES.filter((t) => !finished.has(tableName(t)))) {
      const { rows: found } = await targets[table.service]!.query<{ present: boolean }>(
        `select exists (select 1 from public.${table.target} where tenant_id = $1) as present`,
        [tenantId],
      );
      if (found[0]!.present) present.push(tableName(table));
    }
    const state: DistrictState = finished.size === TABLES.length ? 'done' : finished.size ? 'resume' : present.length ? 'adopt' : 'new';
    if (state === 'done' || state === 'adopt') {
      // Present already: acceptable only when it is exactly what this source holds.
      const report = await reconcileDistrict(client, targets, { slug, tenantId });
      if (!report.match)
        throw new ConsolidationError(
          `district ${slug} is already present in the target with different data (${describeDifferences(report)}); run reconcile for the ids`,
        );
    }
    return { slug, name: profile.name, tenantId, database, state, status: existing?.status ?? null, rows, finished: [...finished] };
  } finally {
    await client.end().catch(() => {});
  }
}

/** Read-only: checks every selected district and returns the plan (what --dry-run prints). */
export async function planConsolidation(
  options: Pick<ConsolidateOptions, 'source' | 'targets' | 'districts' | 'jobs'>,
): Promise<DistrictPlan[]> {
  const slugs = await resolveSlugs(options.source, options.districts);
  const targets = await openTargets(options.targets);
  try {
    await verifyTargets(targets);
    const plans: DistrictPlan[] = [];
    const problems: string[] = [];
    for (const slug of slugs) {
      // Every district is checked, so one run reports every bad input at once.
      await planDistrict(options.source, targets, slug).then(
        (plan) => plans.push(plan),
        (error: Error) => problems.push(error.message),
      );
    }
    if (problems.length) throw new ConsolidationError(problems.join('\n'));
    return plans;
  } finally {
    await closeAll(Object.values(targets));
  }
}

interface CounterLimits {
  abortAfterRows?: number;
  stallAfterRows?: number;
  /** Rows copied so far in the whole run. */
  copiedInRun: () => number;
}

/** Counts rows (text COPY: one newline per row; newlines inside values are escaped) and applies the test hooks. */
class RowCounter extends Transform {
  rows = 0;
  readonly #onRows: (rows: number) => void;
  readonly #limits: CounterLimits;

  constructor(onRows: (rows: number) => void, limits: CounterLimits) {
    super();
    this.#onRows = onRows;
    this.#limits = limits;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    let rows = 0;
    for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) rows++;
    this.rows += rows;
    this.#onRows(rows);
    const copied = this.#limits.copiedInRun();
    if (this.#limits.stallAfterRows !== undefined && copied >= this.#limits.stallAfterRows) return; // never calls back: hangs mid-COPY
    if (this.#limits.abortAfterRows !== undefined && copied >= this.#limits.abortAfterRows) {
      callback(new ConsolidationError(`aborted after ${copied} rows (--abort-after-rows)`));
      return;
    }
    callback(null, chunk);
  }
}

async function copyPair(source: pg.Client, target: pg.Client, table: TableMapping, tenantId: string, counter: RowCounter): Promise<number> {
  // Identifiers come from tables.ts (constants); the only value, the tenant id, is a checked UUID literal.
  const select = copySourceSql(table, tenantId);
  await target.query('begin');
  try {
    await target.query(`delete from public.${table.target} where tenant_id = $1`, [tenantId]);
    const into = target.query(copyFrom(`copy public.${table.target} (${copyTargetColumns(table).join(', ')}) from stdin`));
    const out = source.query(copyTo(`copy (${select}) to stdout`));
    await pipeline(out, counter, into);
    await target.query('insert into consolidation.checkpoint (district_id, table_name, rows) values ($1, $2, $3)', [
      tenantId,
      table.target,
      counter.rows,
    ]);
    await target.query('commit');
    return counter.rows;
  } catch (error) {
    await target.query('rollback').catch(() => {});
    throw error;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function consolidate(options: ConsolidateOptions): Promise<ConsolidationSummary> {
  const started = performance.now();
  const plans = await planConsolidation(options);
  const totalRows = plans
    .filter((p) => p.state === 'new' || p.state === 'resume')
    .reduce(
      (sum, p) =>
        sum +
        Object.entries(p.rows)
          .filter(([t]) => !p.finished.includes(t))
          .reduce((s, [, n]) => s + n, 0),
      0,
    );
  const progress = options.progress?.(totalRows) ?? silentProgress;
  let copiedInRun = 0;

  // The checkpoint tables, once and serially (concurrent CREATE … IF NOT EXISTS can collide).
  const setup = await openTargets(options.targets);
  try {
    for (const service of SERVICES) await ensureCheckpointTable(setup[service]!);
  } finally {
    await closeAll(Object.values(setup));
  }

  const consolidateDistrict = async (targets: TargetClients, plan: DistrictPlan): Promise<DistrictResult> => {
    const districtStarted = performance.now();
    const result: DistrictResult = {
      slug: plan.slug,
      tenantId: plan.tenantId,
      state: plan.state,
      copied: [],
      skipped: [...plan.finished],
      rows: 0,
      seconds: 0,
      status: plan.status ?? 'migrating',
    };
    const directory = targets[DIRECTORY]!;
    if (plan.state === 'done' || plan.state === 'adopt') {
      // Reconciled clean in the preflight: record what is there and finish an interrupted activation.
      if (plan.state === 'adopt') {
        for (const table of TABLES) {
          await targets[table.service]!.query(
            'insert into consolidation.checkpoint (district_id, table_name, rows) values ($1, $2, $3) on conflict do nothing',
            [plan.tenantId, table.target, plan.rows[tableName(table)]],
          );
        }
        result.skipped = TABLES.map(tableName);
      }
      await registerDistrict(directory, { tenantId: plan.tenantId, slug: plan.slug, name: plan.name }, 'active');
      if (plan.status === 'migrating') await setDistrictStatus(directory, plan.tenantId, 'active');
      result.status = plan.status === 'migrating' || plan.status === null ? 'active' : plan.status;
      result.seconds = (performance.now() - districtStarted) / 1000;
      return result;
    }

    await registerDistrict(directory, { tenantId: plan.tenantId, slug: plan.slug, name: plan.name }, 'migrating');
    if (plan.status !== null && plan.status !== 'migrating') {
      await setDistrictStatus(directory, plan.tenantId, 'migrating');
      // The gateway may answer from a cached status for up to 2 × its TTL (see gateway/district-status.ts).
      if (plan.status === 'active') await sleep(2 * options.statusTtlMs);
    }

    const source = await openSource(options.source, plan.slug);
    progress.startDistrict(
      plan.slug,
      TABLES.filter((t) => !plan.finished.includes(tableName(t))).reduce((s, t) => s + plan.rows[tableName(t)]!, 0),
    );
    try {
      // One snapshot for every table of the district, so its foreign keys agree with each other.
      await source.query('begin isolation level repeatable read read only');
      for (const table of TABLES) {
        if (plan.finished.includes(tableName(table))) continue;
        const tableStarted = performance.now();
        const counter = new RowCounter(
          (rows) => {
            copiedInRun += rows;
            progress.addRows(plan.slug, rows);
          },
          { abortAfterRows: options.abortAfterRows, stallAfterRows: options.stallAfterRows, copiedInRun: () => copiedInRun },
        );
        const rows = await copyPair(source, targets[table.service]!, table, plan.tenantId, counter);
        result.copied.push({ table: tableName(table), rows, seconds: (performance.now() - tableStarted) / 1000 });
        result.rows += rows;
      }
      await source.query('commit');
      const report = await reconcileDistrict(source, targets, plan);
      if (!report.match)
        throw new ConsolidationError(
          `district ${plan.slug} did not reconcile after copying (${describeDifferences(report)}); it stays migrating`,
        );
      await setDistrictStatus(directory, plan.tenantId, 'active');
      result.status = 'active';
    } catch (error) {
      throw new ConsolidationError(`district ${plan.slug}: ${(error as Error).message}`);
    } finally {
      progress.finishDistrict(plan.slug);
      await source.end().catch(() => {});
    }
    result.seconds = (performance.now() - districtStarted) / 1000;
    return result;
  };

  // `jobs` districts at once; a running district borrows one set of target connections (one per service
  // database), opened once per slot. After a failure no new district starts; the running ones finish.
  const slots = Math.min(options.jobs, plans.length);
  const idle: TargetClients[] = [];
  const limit = pLimit(Math.max(1, slots));
  const results: DistrictResult[] = [];
  const failures: string[] = [];
  try {
    for (let slot = 0; slot < slots; slot++) idle.push(await openTargets(options.targets));
    await limit.map(plans, async (plan) => {
      if (failures.length) return;
      const targets = idle.pop()!;
      try {
        results.push(await consolidateDistrict(targets, plan));
      } catch (error) {
        failures.push((error as Error).message);
      } finally {
        idle.push(targets);
      }
    });
  } finally {
    progress.stop();
    await Promise.all(idle.map((targets) => closeAll(Object.values(targets))));
  }
  if (failures.length) throw new ConsolidationError(failures.join('\n'));
  const seconds = (performance.now() - started) / 1000;
  const rows = results.reduce((sum, r) => sum + r.rows, 0);
  results.sort((a, b) => a.slug.localeCompare(b.slug));
  return { districts: results, rows, seconds, rowsPerSecond: Math.round(rows / seconds) };
}
