/**
 * `district offboard`: deletes a suspended district's rows from every service database, children before
 * parents, in batches that each commit on their own and are idempotent (a rerun after a kill deletes what is
 * left), then proves the result: the district's row count in every tenant table is 0 (the directory keeps one
 * tombstone row) and every other district's counts and checksums equal those taken before.
 *
 * The tombstone: the directory row keeps its tenant id (so the id is never reused: onboarding finds it taken)
 * and its created_at, loses its name (empty) and slug (`offboarded-<tenant id>`, unique and naming nobody), and
 * stays 'suspended', which the gateway refuses.
 */
import { escapeIdentifier } from 'pg';
import pg from 'pg';
import cliProgress from 'cli-progress';
import type { ServiceDatabase } from '../../database/database.ts';
import {
  DIRECTORY_SERVICE,
  DIRECTORY_TABLE,
  discoverDistrictTables,
  districtFigures,
  everyDistrictFigures,
  qualifiedName,
  Refused,
  tableSql,
  type DistrictRecord,
  type DistrictTable,
  type TableFigures,
} from './export-catalog.ts';
import { readManifest, resolveDistrict, verifyExport } from './export.ts';

export const DELETE_BATCH_ROWS = 5000;
export const TOMBSTONE_SLUG_PREFIX = 'offboarded-';
export const isTombstone = (district: Pick<DistrictRecord, 'slug'>) => district.slug.startsWith(TOMBSTONE_SLUG_PREFIX);

const connect = async (url: string) => {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return client;
};

/** Every tenant table of every database with an open owner connection, in FK order per database. */
export interface OpenDatabases {
  clients: Map<string, pg.Client>;
  tables: DistrictTable[];
  close(): Promise<void>;
}

export async function openDatabases(databases: ServiceDatabase[]): Promise<OpenDatabases> {
  const clients = new Map<string, pg.Client>();
  const tables: DistrictTable[] = [];
  try {
    for (const database of databases) {
      const client = await connect(database.ownerUrl);
      clients.set(database.service, client);
      tables.push(...(await discoverDistrictTables(client, database.service)));
    }
  } catch (error) {
    await Promise.all([...clients.values()].map((c) => c.end().catch(() => {})));
    throw error;
  }
  return { clients, tables, close: () => Promise.all([...clients.values()].map((c) => c.end())).then(() => {}) };
}

export const isDirectoryTable = (table: Pick<DistrictTable, 'service' | 'name'>) =>
  table.service === DIRECTORY_SERVICE && table.name === DIRECTORY_TABLE;

/** Every district's counts and checksums but one's, per table (`service.table` → tenant → figures). */
export async function otherDistrictsFigures(open: OpenDatabases, tenantId: string): Promise<Map<string, Map<string, TableFigures>>> {
  const figures = new Map<string, Map<string, TableFigures>>();
  for (const table of open.tables) {
    const all = await everyDistrictFigures(open.clients.get(table.service)!, table);
    all.delete(tenantId);
    figures.set(qualifiedName(table), all);
  }
  return figures;
}

/** The tables (`service.table`: what changed) where other districts' figures differ. */
export function changedTables(before: Map<string, Map<string, TableFigures>>, after: Map<string, Map<string, TableFigures>>): string[] {
  const changed: string[] = [];
  for (const [table, districts] of before) {
    const now = after.get(table);
    const same =
      now?.size === districts.size &&
      [...districts].every(([tenant, f]) => now.get(tenant)?.rows === f.rows && now.get(tenant)?.checksum === f.checksum);
    if (!same) changed.push(table);
  }
  return changed;
}

/**
 * Deletes the district's rows from every tenant table but the directory's district table, children before
 * parents, DELETE_BATCH_ROWS per committed statement: killed at any point, a rerun finishes the job.
 */
export async function deleteDistrictRows(open: OpenDatabases, tenantId: string, progress: boolean): Promise<number> {
  const targets = open.tables.filter((t) => !isDirectoryTable(t)).reverse();
  const bars = progress
    ? new cliProgress.MultiBar(
        { format: '{label} {bar} {value}/{total} rows deleted', stream: process.stderr, hideCursor: true },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  let deleted = 0;
  try {
    for (const table of targets) {
      const client = open.clients.get(table.service)!;
      const { rows } = await districtFigures(client, table, tenantId);
      const bar = bars?.create(rows, 0, { label: qualifiedName(table).slice(0, 32).padEnd(32) });
      let done = 0;
      for (;;) {
        // Identifiers from the catalog, quoted; the tenant id a parameter.
        const { rowCount } = await client.query(
          `delete from ${tableSql(table)} where tenant_id = $1 and ctid = any(array(select ctid from ${tableSql(table)} where tenant_id = $1 limit ${DELETE_BATCH_ROWS}))`,
          [tenantId],
        );
        done += rowCount ?? 0;
        bar?.update(done);
        if (!rowCount) break;
      }
      deleted += done;
    }
  } finally {
    bars?.stop();
  }
  return deleted;
}

/** The district's rows per table that should be 0 but are not (`service.table: n`); the directory may hold one. */
export async function leftoverRows(open: OpenDatabases, tenantId: string): Promise<string[]> {
  const left: string[] = [];
  for (const table of open.tables) {
    const { rows } = await districtFigures(open.clients.get(table.service)!, table, tenantId);
    if (rows > (isDirectoryTable(table) ? 1 : 0)) left.push(`${qualifiedName(table)}: ${rows}`);
  }
  return left;
}

export interface OffboardSummary {
  district: DistrictRecord;
  deletedRows: number;
  tables: number;
  otherDistricts: number;
  seconds: number;
}

export async function offboardDistrict(
  databases: ServiceDatabase[],
  idOrSlug: string,
  options: { exportDir?: string; noExport: boolean; progress: boolean },
): Promise<OffboardSummary> {
  const started = performance.now();
  const district = await resolveDistrict(databases, idOrSlug);
  if (district.status !== 'suspended') throw new Refused(`district ${district.slug} is ${district.status}: suspend it first`);
  if (options.exportDir === undefined && !options.noExport)
    throw new Refused('offboard needs --export <dir> (an export of this district) or --no-export');
  if (options.exportDir !== undefined) {
    const manifest = await readManifest(options.exportDir);
    if (manifest.district.tenantId !== district.tenantId)
      throw new Refused(`${options.exportDir} is an export of ${manifest.district.slug}, not of ${district.slug}`);
    const { problems } = await verifyExport(options.exportDir);
    if (problems.length)
      throw new Refused(`${options.exportDir} does not match its manifest: ${problems[0]!.table}: ${problems[0]!.problem}`);
  }
  const open = await openDatabases(databases);
  try {
    const before = await otherDistrictsFigures(open, district.tenantId);
    const deletedRows = await deleteDistrictRows(open, district.tenantId, options.progress);
    const directory = open.clients.get(DIRECTORY_SERVICE)!;
    await directory.query(
      `update public.${escapeIdentifier(DIRECTORY_TABLE)} set name = '', slug = $2, status = 'suspended' where tenant_id = $1`,
      [district.tenantId, `${TOMBSTONE_SLUG_PREFIX}${district.tenantId}`],
    );
    const left = await leftoverRows(open, district.tenantId);
    if (left.length) throw new Error(`rows of ${district.slug} remain after the delete: ${left.join(', ')}`);
    const changed = changedTables(before, await otherDistrictsFigures(open, district.tenantId));
    if (changed.length) throw new Error(`other districts' rows changed during the offboard in ${changed.join(', ')}`);
    const otherDistricts = new Set([...before.values()].flatMap((districts) => [...districts.keys()])).size;
    return { district, deletedRows, tables: open.tables.length, otherDistricts, seconds: (performance.now() - started) / 1000 };
  } finally {
    await open.close();
  }
}
