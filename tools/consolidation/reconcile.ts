/**
 * Reconciliation: for one district and table, both sides compute in SQL the same checksum over the same
 * rows (the target's business columns; the source's legacy columns mapped the way consolidation maps
 * them): the row count and two sums over every row's 64-bit fingerprint `x` (tables.ts): of a 64-bit hash
 * of its high 32 bits and of its low 32 bits (PostgreSQL sums bigints in a 128-bit accumulator, so nothing
 * wraps). A sum does not depend on row order; the per-row hashing of `x` is what makes a value swapped
 * between two rows count (a sum of `x` itself would not see it, `x` being linear in its columns' hashes),
 * and hashing each half keeps all 64 bits (int8's hash folds its input to 32 bits). Before comparing, both
 * sides fingerprint the same probe row: servers that hash differently (byte order, a changed hash
 * function) are refused rather than reported as all different. Where the checksums differ, the key range is bisected: the
 * key's last 12 hex digits are the legacy id, so ranges of 4,096, then 256, then 16 legacy ids are
 * compared, and the rows of the differing ranges one by one by fingerprint.
 */
import pLimit from 'p-limit';
import type pg from 'pg';
import type { SourceTemplate } from '../legacy/source-url.ts';
import { districtTenantId } from './district-id.ts';
import { closeAll, openSource, openTargets, verifyLegacySchema, verifyTargets, type TargetClients } from './endpoints.ts';
import {
  fingerprintProbeSql,
  sourceRowsSql,
  tableName,
  targetKeyOwnersSql,
  targetRowsSql,
  TABLES,
  type Service,
  type TableMapping,
} from './tables.ts';

/** Key-range widths in hex digits of the legacy id (12 digits): 4,096 ids, then 256, then 16. */
const RANGE_WIDTHS = [9, 10, 11];
/** Ids listed per table and class in a report (the counts are always complete). */
export const MAX_LISTED = 1000;

export interface RowRef {
  /** The row's target key (uuid, or "section/student" uuids). */
  id: string;
  /** The row's legacy id ("42", or "7/42"), when known. */
  legacyId: string | null;
}

export interface MisattributedRow extends RowRef {
  /** Tenant the row was found under instead. */
  foundUnder: string;
}

export interface TableReport {
  table: string;
  legacyTable: string;
  sourceRows: number;
  targetRows: number;
  /** The two sums of the rows' mixed fingerprint halves, "<high>/<low>" in decimal; equal counts and sums = match. */
  sourceChecksum: string;
  targetChecksum: string;
  match: boolean;
  counts: { missing: number; extra: number; changed: number; misattributed: number };
  missing: RowRef[];
  extra: (RowRef & { belongsTo?: string })[];
  changed: RowRef[];
  misattributed: MisattributedRow[];
  /** Queries per side that the bisection needed (0 when the checksums matched). */
  bisectionQueries: number;
}

export interface DistrictReport {
  slug: string;
  tenantId: string;
  match: boolean;
  tables: TableReport[];
}

interface Range {
  range: string;
  rows: number;
  /** The two sums of the rows' mixed fingerprint halves, "<high>/<low>" in decimal. */
  sum: string;
}

interface Side {
  client: pg.Client;
  /** `select k, x, legacy …` for this district, already formatted. */
  rows: string;
}

/**
 * The checksum columns over `rows`. `offset 0` keeps `x` computed once per row although both sums use it;
 * PostgreSQL drops the unused `k` and `legacy` of a subquery, so the whole-table checksum never builds them.
 */
const CHECKSUM = `count(*)::int as rows,
  coalesce(sum(hashint8extended(x >> 32, 0)), 0)::text || '/' || coalesce(sum(hashint8extended(x & 4294967295, 0)), 0)::text as sum`;
const fenced = (side: Side) => `(${side.rows} offset 0)`;
const rangeOf = (width: number) => `left(right(k, 12), ${width})`;

/** The whole table's checksum. */
async function checksumOf(side: Side): Promise<Range> {
  const { rows } = await side.client.query<Range>(`select '' as range, ${CHECKSUM} from ${fenced(side)} r`);
  return rows[0]!;
}

async function rangeChecksums(side: Side, width: number, within: { width: number; ranges: string[] }): Promise<Map<string, Range>> {
  const { rows } = await side.client.query<Range>(
    `select ${rangeOf(width)} as range, ${CHECKSUM}
       from ${fenced(side)} r where ${rangeOf(within.width)} = any($1::text[]) group by 1`,
    [within.ranges],
  );
  return new Map(rows.map((r) => [r.range, r]));
}

async function rowsIn(side: Side, width: number, ranges: string[]): Promise<Map<string, { h: string; legacy: string | null }>> {
  const { rows } = await side.client.query<{ k: string; h: string; legacy: string | null }>(
    `select k, x::text as h, legacy from (${side.rows}) r where ${rangeOf(width)} = any($1::text[])`,
    [ranges],
  );
  return new Map(rows.map((r) => [r.k, r]));
}

/** Ranges whose count or checksum differ, split into those present on both sides and those on one side only. */
function differingRanges(source: Map<string, Range>, target: Map<string, Range>) {
  const both: string[] = [];
  const oneSide: string[] = [];
  for (const range of new Set([...source.keys(), ...target.keys()])) {
    const s = source.get(range);
    const t = target.get(range);
    if (s && t && s.rows === t.rows && s.sum === t.sum) continue;
    (s && t ? both : oneSide).push(range);
  }
  return { both, oneSide };
}

export async function reconcileTable(
  source: Side,
  target: Side,
  table: TableMapping,
  tenantId: string,
  targetClient: pg.Client,
): Promise<TableReport> {
  const [sourceTotal, targetTotal] = await Promise.all([checksumOf(source), checksumOf(target)]);
  const report: TableReport = {
    table: tableName(table),
    legacyTable: table.legacy,
    sourceRows: sourceTotal.rows,
    targetRows: targetTotal.rows,
    sourceChecksum: sourceTotal.sum,
    targetChecksum: targetTotal.sum,
    match: sourceTotal.rows === targetTotal.rows && sourceTotal.sum === targetTotal.sum,
    counts: { missing: 0, extra: 0, changed: 0, misattributed: 0 },
    missing: [],
    extra: [],
    changed: [],
    misattributed: [],
    bisectionQueries: 0,
  };
  if (report.match) return report;

  // Bisect: a range present on one side only needs no further splitting; the others are split until 16 ids wide.
  let both = [''];
  let width = 0;
  const leaves: { width: number; ranges: string[] }[] = [];
  for (const next of RANGE_WIDTHS) {
    const within = { width, ranges: both };
    const [s, t] = await Promise.all([rangeChecksums(source, next, within), rangeChecksums(target, next, within)]);
    report.bisectionQueries++;
    const differing = differingRanges(s, t);
    leaves.push({ width: next, ranges: differing.oneSide });
    both = differing.both;
    width = next;
    if (!both.length) break;
  }
  leaves.push({ width, ranges: both });

  const missing: RowRef[] = [];
  for (const leaf of leaves.filter((l) => l.ranges.length)) {
    const [s, t] = await Promise.all([rowsIn(source, leaf.width, leaf.ranges), rowsIn(target, leaf.width, leaf.ranges)]);
    report.bisectionQueries++;
    for (const [k, row] of s) {
      const other = t.get(k);
      if (!other) missing.push({ id: k, legacyId: row.legacy });
      else if (other.h !== row.h) report.changed.push({ id: k, legacyId: row.legacy });
    }
    for (const [k, row] of t) if (!s.has(k)) report.extra.push({ id: k, legacyId: row.legacy });
  }

  // A row missing here may be filed under another district: name where it is.
  const elsewhere = new Map<string, string>();
  for (let i = 0; i < missing.length; i += 10_000) {
    const { rows } = await targetClient.query<{ tenant: string; k: string }>(targetKeyOwnersSql(table), [
      missing.slice(i, i + 10_000).map((m) => m.id),
    ]);
    for (const row of rows) if (row.tenant !== tenantId) elsewhere.set(row.k, row.tenant);
  }
  for (const row of missing) {
    const foundUnder = elsewhere.get(row.id);
    if (foundUnder) report.misattributed.push({ ...row, foundUnder });
    else report.missing.push(row);
  }
  const byLegacy = (a: RowRef, b: RowRef) =>
    Number(a.legacyId?.split('/')[0] ?? 0) - Number(b.legacyId?.split('/')[0] ?? 0) || a.id.localeCompare(b.id);
  for (const kind of ['missing', 'extra', 'changed', 'misattributed'] as const) {
    report.counts[kind] = report[kind].length;
    (report[kind] as RowRef[]).sort(byLegacy);
    (report[kind] as RowRef[]).splice(MAX_LISTED);
  }
  return report;
}

/** Refuses a district whose legacy server and a target hash the probe row differently: every row would differ. */
async function checkFingerprintsAgree(source: pg.Client, targets: TargetClients, slug: string, services: Service[]): Promise<void> {
  type Probe = { probe: string; encoding: string; version: string };
  const probe = fingerprintProbeSql();
  const [legacy, ...others] = await Promise.all([source, ...services.map((s) => targets[s]!)].map((c) => c.query<Probe>(probe)));
  const describe = (p: Probe) => `PostgreSQL ${p.version}, encoding ${p.encoding}`;
  for (const [i, other] of others.entries()) {
    const [a, b] = [legacy!.rows[0]!, other.rows[0]!];
    if (a.probe !== b.probe)
      throw new Error(
        `cannot reconcile ${slug}: its legacy database (${describe(a)}) and the ${services[i]} service database (${describe(b)}) fingerprint the same values differently (byte order or hash functions differ)`,
      );
  }
}

/** Every table of one district. `source` and `targets` must carry CANONICAL_SETTINGS (endpoints.ts opens them so). */
export async function reconcileDistrict(
  source: pg.Client,
  targets: TargetClients,
  district: { slug: string; tenantId: string },
  tables: TableMapping[] = TABLES,
): Promise<DistrictReport> {
  await checkFingerprintsAgree(source, targets, district.slug, [...new Set(tables.map((t) => t.service))]);
  const reports: TableReport[] = [];
  for (const table of tables) {
    const target = targets[table.service]!;
    const sourceSide = { client: source, rows: sourceRowsSql(table, district.tenantId) };
    const targetSide = { client: target, rows: targetRowsSql(table, district.tenantId) };
    reports.push(await reconcileTable(sourceSide, targetSide, table, district.tenantId, target));
  }
  return { slug: district.slug, tenantId: district.tenantId, match: reports.every((r) => r.match), tables: reports };
}

/** A row moved from district A to B shows as misattributed in A and extra in B: mark B's extra with A. */
export function crossReference(districts: DistrictReport[]): void {
  const slugOf = new Map(districts.map((d) => [d.tenantId, d.slug]));
  const owners = new Map<string, string>();
  for (const district of districts) {
    for (const table of district.tables) {
      for (const row of table.misattributed) owners.set(`${row.foundUnder}|${table.table}|${row.id}`, district.slug);
    }
  }
  for (const district of districts) {
    for (const table of district.tables) {
      for (const row of table.extra) {
        const owner = owners.get(`${district.tenantId}|${table.table}|${row.id}`);
        if (owner) row.belongsTo = owner;
      }
      for (const row of table.misattributed)
        row.foundUnder = slugOf.has(row.foundUnder) ? `${slugOf.get(row.foundUnder)} (${row.foundUnder})` : row.foundUnder;
    }
  }
}

export interface ReconciliationReport {
  match: boolean;
  districts: DistrictReport[];
  sourceRows: number;
  targetRows: number;
  seconds: number;
  /** Rows each side digested per second of wall time. */
  sourceRowsPerSecond: number;
  targetRowsPerSecond: number;
}

/** Reconciles districts `jobs` at once; each worker keeps one connection per service database. */
export async function reconcileDistricts(options: {
  source: SourceTemplate;
  targets: Record<Service, string>;
  slugs: string[];
  jobs: number;
}): Promise<ReconciliationReport> {
  const started = performance.now();
  const districts: DistrictReport[] = [];
  // As consolidate: each running district borrows one set of target connections; the first failure stops
  // new districts from starting and is thrown once the running ones have finished.
  const slots = Math.min(options.jobs, options.slugs.length);
  const idle: TargetClients[] = [];
  const limit = pLimit(Math.max(1, slots));
  let failure: { error: unknown } | undefined;
  try {
    for (let slot = 0; slot < slots; slot++) {
      idle.push(await openTargets(options.targets));
      await verifyTargets(idle.at(-1)!);
    }
    await limit.map(options.slugs, async (slug) => {
      if (failure) return;
      const targets = idle.pop()!;
      try {
        const source = await openSource(options.source, slug);
        try {
          await verifyLegacySchema(source, options.source.databaseOf(slug));
          districts.push(await reconcileDistrict(source, targets, { slug, tenantId: districtTenantId(slug) }));
        } finally {
          await source.end().catch(() => {});
        }
      } catch (error) {
        failure ??= { error };
      } finally {
        idle.push(targets);
      }
    });
  } finally {
    await Promise.all(idle.map((targets) => closeAll(Object.values(targets))));
  }
  if (failure) throw failure.error;
  districts.sort((a, b) => a.slug.localeCompare(b.slug));
  crossReference(districts);
  const seconds = (performance.now() - started) / 1000;
  const sum = (side: 'sourceRows' | 'targetRows') => districts.reduce((total, d) => total + d.tables.reduce((s, t) => s + t[side], 0), 0);
  const sourceRows = sum('sourceRows');
  const targetRows = sum('targetRows');
  return {
    match: districts.every((d) => d.match),
    districts,
    sourceRows,
    targetRows,
    seconds,
    sourceRowsPerSecond: Math.round(sourceRows / seconds),
    targetRowsPerSecond: Math.round(targetRows / seconds),
  };
}

const SHOWN_IDS = 10;
const describeRow = (row: RowRef & { foundUnder?: string; belongsTo?: string }) =>
  `${row.legacyId ? `legacy ${row.legacyId} ` : ''}${row.id}${row.foundUnder ? ` (under ${row.foundUnder})` : ''}${row.belongsTo ? ` (belongs to ${row.belongsTo})` : ''}`;

/** The human table: one line per district × table, then every difference with its ids. */
export function renderReport(report: ReconciliationReport): string {
  const header = ['district', 'table', 'source rows', 'target rows', 'result'];
  const lines = report.districts.flatMap((d) =>
    d.tables.map((t) => [
      d.slug,
      t.table,
      String(t.sourceRows),
      String(t.targetRows),
      t.match
        ? 'ok'
        : Object.entries(t.counts)
            .filter(([, n]) => n)
            .map(([k, n]) => `${n} ${k}`)
            .join(', ') || 'checksum differs',
    ]),
  );
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const row = (cells: string[]) =>
    cells
      .map((c, i) => (i === 2 || i === 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const out = [row(header), row(widths.map((w) => '-'.repeat(w))), ...lines.map(row)];
  const details: string[] = [];
  for (const d of report.districts) {
    for (const t of d.tables.filter((x) => !x.match)) {
      for (const kind of ['missing', 'extra', 'changed', 'misattributed'] as const) {
        const rows = t[kind] as (RowRef & { foundUnder?: string; belongsTo?: string })[];
        if (!t.counts[kind]) continue;
        const more = t.counts[kind] - Math.min(rows.length, SHOWN_IDS);
        details.push(
          `${d.slug} ${t.table} ${kind} ${t.counts[kind]}: ${rows.slice(0, SHOWN_IDS).map(describeRow).join(', ')}${more > 0 ? `, … ${more} more (see the JSON report)` : ''}`,
        );
      }
    }
  }
  if (details.length) out.push('', 'differences:', ...details);
  out.push(
    '',
    `${report.match ? 'MATCH' : 'MISMATCH'}: ${report.districts.length} districts, source ${report.sourceRows} rows, target ${report.targetRows} rows in ${report.seconds.toFixed(2)} s`,
  );
  return out.join('\n');
}
