/**
 * `district export`: every row of one district from every service database, one CSV file (with a header) per
 * tenant table, streamed by COPY in constant memory, and manifest.json with each table's row count and
 * checksum computed in the database and each file's sha256. Each database is read in one REPEATABLE READ
 * READ ONLY transaction (one snapshot per database), so an active district exports consistently.
 * CSV is COPY's own format: restore's COPY FROM reads back exactly the values written (uuids, dates,
 * timestamps in UTC, numerics with their scale, NULL as an unquoted empty field, '' quoted).
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import cliProgress from 'cli-progress';
import { parse } from 'csv-parse';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import type { ServiceDatabase } from '../../database/database.ts';
import { CANONICAL_SETTINGS, directoryDatabase } from '../operator-cli.ts';
import {
  discoverDistrictTables,
  districtFigures,
  findDistrict,
  qualifiedName,
  Refused,
  tableSql,
  tenantLiteral,
  type DistrictRecord,
} from './export-catalog.ts';

export const MANIFEST_FILE = 'manifest.json';
export const MANIFEST_FORMAT = 'k12-district-export/1';

export interface ManifestTable {
  service: string;
  table: string;
  file: string;
  columns: string[];
  rows: number;
  /** Sum of the rows' hash_record_extended, computed in the database (export-catalog.ts). */
  checksum: string;
  /** sha256 of the file, hex. */
  sha256: string;
}

export interface ExportManifest {
  format: typeof MANIFEST_FORMAT;
  district: DistrictRecord;
  exportedAt: string;
  tables: ManifestTable[];
}

export interface ExportSummary {
  manifest: ExportManifest;
  rows: number;
  seconds: number;
}

/** Counts lines (rows, plus the header) and hashes the bytes passing through. */
export class FileTap extends Transform {
  readonly hash = createHash('sha256');
  lines = 0;
  private readonly onLines: (lines: number) => void;
  constructor(onLines: (lines: number) => void) {
    super();
    this.onLines = onLines;
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: () => void) {
    this.hash.update(chunk);
    let lines = 0;
    for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) lines++;
    this.lines += lines;
    this.onLines(lines);
    this.push(chunk);
    done();
  }
}

const connect = async (url: string) => {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return client;
};

/** The directory database of the given set (the registry entry with directory: true). */
export function directoryOf(databases: ServiceDatabase[]): ServiceDatabase {
  const directory = directoryDatabase(databases);
  return directory;
}

export async function resolveDistrict(databases: ServiceDatabase[], idOrSlug: string): Promise<DistrictRecord> {
  const client = await connect(directoryOf(databases).ownerUrl);
  try {
    const district = await findDistrict(client, idOrSlug);
    if (!district) throw new Refused(`no district ${JSON.stringify(idOrSlug)}`);
    return district;
  } finally {
    await client.end();
  }
}

export async function exportDistrict(
  databases: ServiceDatabase[],
  idOrSlug: string,
  out: string,
  options: { progress: boolean },
): Promise<ExportSummary> {
  const started = performance.now();
  const district = await resolveDistrict(databases, idOrSlug);
  await mkdir(out, { recursive: true });
  if ((await readdir(out)).length) throw new Refused(`${out} is not empty`);
  const tenant = tenantLiteral(district.tenantId);
  const bars = options.progress
    ? new cliProgress.MultiBar(
        { format: '{label} {bar} {value}/{total} rows  {speed} rows/s', stream: process.stderr, hideCursor: true },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  const tables: ManifestTable[] = [];
  try {
    for (const database of databases) {
      const client = await connect(database.ownerUrl);
      try {
        for (const sql of CANONICAL_SETTINGS) await client.query(sql);
        await client.query('begin isolation level repeatable read read only');
        for (const table of await discoverDistrictTables(client, database.service)) {
          const figures = await districtFigures(client, table, district.tenantId);
          const file = `${database.service}.${table.name}.csv`;
          const bar = bars?.create(figures.rows, 0, { label: qualifiedName(table).slice(0, 32).padEnd(32), speed: 0 });
          const tableStarted = performance.now();
          let copied = 0;
          const tap = new FileTap((lines) => {
            copied += lines;
            bar?.update(Math.max(copied - 1, 0), {
              speed: Math.round(copied / Math.max((performance.now() - tableStarted) / 1000, 0.001)),
            });
          });
          const columns = table.columns.map((c) => pg.escapeIdentifier(c)).join(', ');
          const order = table.key.map((c) => pg.escapeIdentifier(c)).join(', ');
          // Identifiers from the catalog, quoted; the one value is a checked UUID literal.
          const copy = client.query(
            copyTo(
              `copy (select ${columns} from ${tableSql(table)} where tenant_id = ${tenant}::uuid${order ? ` order by ${order}` : ''}) to stdout with (format csv, header true)`,
            ),
          );
          await pipeline(copy, tap, createWriteStream(join(out, file)));
          tables.push({
            service: database.service,
            table: table.name,
            file,
            columns: table.columns,
            ...figures,
            sha256: tap.hash.digest('hex'),
          });
        }
        await client.query('commit');
      } finally {
        await client.end();
      }
    }
  } finally {
    bars?.stop();
  }
  const manifest: ExportManifest = { format: MANIFEST_FORMAT, district, exportedAt: new Date().toISOString(), tables };
  await writeFile(join(out, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
  return { manifest, rows: tables.reduce((sum, t) => sum + t.rows, 0), seconds: (performance.now() - started) / 1000 };
}

export async function readManifest(dir: string): Promise<ExportManifest> {
  let manifest: ExportManifest;
  try {
    manifest = JSON.parse(await readFile(join(dir, MANIFEST_FILE), 'utf8')) as ExportManifest;
  } catch (error) {
    throw new Refused(`no readable export manifest in ${dir}: ${(error as Error).message}`);
  }
  if (manifest.format !== MANIFEST_FORMAT || !Array.isArray(manifest.tables))
    throw new Refused(`${join(dir, MANIFEST_FILE)} is not a ${MANIFEST_FORMAT} manifest`);
  tenantLiteral(manifest.district?.tenantId);
  return manifest;
}

export interface VerifyProblem {
  table: string;
  problem: string;
}

/** Re-reads every file of an export: its sha256 and its record count (parsed as CSV) against the manifest. */
export async function verifyExport(dir: string): Promise<{ manifest: ExportManifest; problems: VerifyProblem[] }> {
  const manifest = await readManifest(dir);
  const problems: VerifyProblem[] = [];
  const listed = new Set(manifest.tables.map((t) => t.file));
  for (const entry of manifest.tables) {
    const table = `${entry.service}.${entry.table}`;
    if (entry.file.includes('/') || entry.file.includes('\\')) {
      problems.push({ table, problem: `file name ${entry.file} leaves the export directory` });
      continue;
    }
    const hash = createHash('sha256');
    let records = 0;
    try {
      await pipeline(
        createReadStream(join(dir, entry.file)).on('data', (chunk) => hash.update(chunk)),
        parse({ columns: false }),
        async (parsed: AsyncIterable<string[]>) => {
          for await (const record of parsed) {
            if (records === 0 && record.join(',') !== entry.columns.join(','))
              problems.push({ table, problem: `header of ${entry.file} is not ${entry.columns.join(',')}` });
            records++;
          }
        },
      );
    } catch (error) {
      problems.push({ table, problem: `unreadable: ${(error as Error).message}` });
      continue;
    }
    const rows = records - 1;
    if (rows !== entry.rows) problems.push({ table, problem: `${rows} rows in ${entry.file}, manifest says ${entry.rows}` });
    const sha256 = hash.digest('hex');
    if (sha256 !== entry.sha256) problems.push({ table, problem: `sha256 of ${entry.file} is ${sha256}, manifest says ${entry.sha256}` });
  }
  for (const file of await readdir(dir))
    if (file !== MANIFEST_FILE && !listed.has(file)) problems.push({ table: file, problem: 'file not in the manifest' });
  return { manifest, problems };
}
