/**
 * `district restore`: loads one district's export into the live databases as their owner, one transaction per
 * service database: each file is COPYed into a temporary table, checked to hold only this district's rows, and
 * inserted into its table (parents first). The directory row (live, a tombstone, or absent) is replaced by the
 * exported one. Refused while the district holds rows unless --replace, which first deletes them the resumable
 * way offboard does. Afterwards the district's counts and checksums must equal the manifest's and every other
 * district's must be unchanged; otherwise the command fails.
 */
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import cliProgress from 'cli-progress';
import { escapeIdentifier } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { ServiceDatabase } from '../../database/database.ts';
import { CANONICAL_SETTINGS } from '../operator-cli.ts';
import { DIRECTORY_SERVICE, DIRECTORY_TABLE, districtFigures, findDistrict, qualifiedName, Refused, tableSql } from './export-catalog.ts';
import { FileTap, verifyExport, type ExportManifest } from './export.ts';
import {
  changedTables,
  deleteDistrictRows,
  isDirectoryTable,
  isTombstone,
  leftoverRows,
  openDatabases,
  otherDistrictsFigures,
} from './offboard.ts';

export interface RestoreSummary {
  manifest: ExportManifest;
  rows: number;
  replacedRows: number;
  seconds: number;
}

export async function restoreDistrict(
  databases: ServiceDatabase[],
  idOrSlug: string,
  from: string,
  options: { replace: boolean; progress: boolean },
): Promise<RestoreSummary> {
  const started = performance.now();
  const { manifest, problems } = await verifyExport(from);
  if (problems.length) throw new Refused(`${from} does not match its manifest: ${problems[0]!.table}: ${problems[0]!.problem}`);
  const { district } = manifest;
  if (idOrSlug !== district.tenantId && idOrSlug !== district.slug)
    throw new Refused(`${from} is an export of ${district.slug} (${district.tenantId}), not of ${idOrSlug}`);
  const open = await openDatabases(databases);
  try {
    const byName = new Map(open.tables.map((t) => [qualifiedName(t), t]));
    const missing = manifest.tables.filter((t) => !byName.has(`${t.service}.${t.table}`));
    if (missing.length)
      throw new Refused(`the export has tables no service database has: ${missing.map((t) => `${t.service}.${t.table}`).join(', ')}`);
    const current = await findDistrict(open.clients.get(DIRECTORY_SERVICE)!, district.tenantId);
    if (current?.status === 'active') throw new Refused(`district ${current.slug} is active: suspend it first`);
    const held = await leftoverRows(open, district.tenantId);
    if (held.length && !options.replace)
      throw new Refused(`district ${district.slug} holds rows (${held.join(', ')}): restore --replace deletes them first`);
    if (current && !isTombstone(current) && !options.replace)
      throw new Refused(`district ${district.slug} is registered: restore --replace replaces its directory entry`);

    const before = await otherDistrictsFigures(open, district.tenantId);
    const replacedRows = held.length ? await deleteDistrictRows(open, district.tenantId, options.progress) : 0;
    let rows = 0;
    const bars = options.progress
      ? new cliProgress.MultiBar(
          { format: '{label} {bar} {value}/{total} rows loaded  {speed} rows/s', stream: process.stderr, hideCursor: true },
          cliProgress.Presets.shades_classic,
        )
      : undefined;
    try {
      for (const database of databases) {
        const client = open.clients.get(database.service)!;
        const entries = open.tables.filter((t) => t.service === database.service);
        for (const sql of CANONICAL_SETTINGS) await client.query(sql);
        await client.query('begin');
        try {
          for (const table of entries) {
            const entry = manifest.tables.find((t) => t.service === table.service && t.table === table.name);
            if (!entry) continue;
            const columns = entry.columns.map((c) => escapeIdentifier(c)).join(', ');
            const staging = escapeIdentifier(`restore_${table.name}`);
            // Identifiers from the catalog and the verified manifest, quoted; values are parameters.
            await client.query(`create temporary table ${staging} (like ${tableSql(table)}) on commit drop`);
            const bar = bars?.create(entry.rows, 0, { label: qualifiedName(table).slice(0, 32).padEnd(32), speed: 0 });
            const tableStarted = performance.now();
            let lines = 0;
            // Lines read, less the header: a row whose text holds a line break counts more than once, hence the cap.
            const tap = bar
              ? new FileTap((read) => {
                  lines += read;
                  const loaded = Math.min(Math.max(lines - 1, 0), entry.rows);
                  bar.update(loaded, { speed: Math.round(loaded / Math.max((performance.now() - tableStarted) / 1000, 0.001)) });
                })
              : undefined;
            const file = createReadStream(join(from, entry.file));
            const copy = client.query(copyFrom(`copy ${staging} (${columns}) from stdin with (format csv, header true)`));
            await (tap ? pipeline(file, tap, copy) : pipeline(file, copy));
            bar?.update(entry.rows);
            const { rows: strays } = await client.query<{ n: string }>(`select count(*)::text as n from ${staging} where tenant_id <> $1`, [
              district.tenantId,
            ]);
            if (Number(strays[0]!.n)) throw new Error(`${entry.file} holds ${strays[0]!.n} rows of other districts`);
            if (isDirectoryTable(table)) await client.query(`delete from ${tableSql(table)} where tenant_id = $1`, [district.tenantId]);
            const inserted = await client.query(`insert into ${tableSql(table)} (${columns}) select ${columns} from ${staging}`);
            rows += inserted.rowCount ?? 0;
          }
          // Checked before the commit, so a database whose rows differ from the manifest keeps none of them.
          const wrong: string[] = [];
          for (const table of entries) {
            const entry = manifest.tables.find((t) => t.service === table.service && t.table === table.name);
            const figures = await districtFigures(client, table, district.tenantId);
            const expected = entry ?? { rows: 0, checksum: '0' };
            if (figures.rows !== expected.rows || figures.checksum !== expected.checksum)
              wrong.push(`${qualifiedName(table)} (${figures.rows} rows, manifest ${expected.rows})`);
          }
          if (wrong.length) throw new Error(`the restored rows differ from the manifest in ${wrong.join(', ')}`);
          // A restored district is served again only after `district resume`.
          if (database.service === DIRECTORY_SERVICE)
            await client.query(`update public.${escapeIdentifier(DIRECTORY_TABLE)} set status = 'suspended' where tenant_id = $1`, [
              district.tenantId,
            ]);
          await client.query('commit');
        } catch (error) {
          await client.query('rollback').catch(() => {});
          throw error;
        }
      }
    } finally {
      bars?.stop();
    }

    const changed = changedTables(before, await otherDistrictsFigures(open, district.tenantId));
    if (changed.length) throw new Error(`other districts' rows changed during the restore in ${changed.join(', ')}`);
    return { manifest, rows, replacedRows, seconds: (performance.now() - started) / 1000 };
  } finally {
    await open.close();
  }
}
