/**
 * What export, offboard and restore share: the tenant tables of a service database discovered from its catalog
 * (every public table with a `tenant_id` column, as the isolation battery and the policy linter find them), in
 * foreign-key order, and the per-district row count and checksum computed in the database.
 *
 * Checksum: the sum (as numeric, so it never overflows) of `hash_record_extended` over each whole row, tenant_id
 * included, in table column order: each type's extended hash function, no text output, so no session setting
 * enters. It compares one database's rows with themselves over time (export → restore into the same schema).
 */
import { escapeIdentifier, escapeLiteral } from 'pg';
import { AUDIT_TABLE } from './audit.ts';
import type pg from 'pg';
import { directoryService, readRegistry } from '../../config/registry.ts';
import { isUuid } from '../../tenancy/tenant-context.ts';

export interface DistrictTable {
  service: string;
  name: string;
  /** Every column, in table order (the order of the export file). */
  columns: string[];
  /** The primary key's columns (tenant_id first). */
  key: string[];
}

/** The table of the directory service that holds one row per district (its tombstone after offboarding). */
export const DIRECTORY_TABLE = 'district';
export const DIRECTORY_SERVICE = directoryService(readRegistry()).name;

/** The tenant tables of one database, parents before children (restore order; delete runs it backwards). */
export async function discoverDistrictTables(client: pg.Client, service: string): Promise<DistrictTable[]> {
  const { rows } = await client.query<{ name: string; columns: string[]; key: string[]; parents: string[] }>(
    `select c.relname as name,
            array(select a.attname::text from pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped order by a.attnum) as columns,
            array(select a.attname::text from pg_index i, unnest(i.indkey::int2[]) with ordinality k(attnum, n)
                    join pg_attribute a on a.attrelid = c.oid and a.attnum = k.attnum
                   where i.indrelid = c.oid and i.indisprimary order by k.n) as key,
            array(select distinct p.relname::text from pg_constraint f join pg_class p on p.oid = f.confrelid
                   where f.conrelid = c.oid and f.contype = 'f' and f.confrelid <> c.oid) as parents
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relkind in ('r', 'p')
        and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped)
      order by c.relname`,
  );
  const byName = new Map(rows.map((row) => [row.name, row]));
  const ordered: DistrictTable[] = [];
  const placed = new Set<string>();
  const place = (name: string, path: string[]) => {
    if (placed.has(name)) return;
    if (path.includes(name)) throw new Error(`${service}: foreign-key cycle through ${[...path, name].join(' → ')}`);
    const row = byName.get(name)!;
    for (const parent of row.parents) if (byName.has(parent)) place(parent, [...path, name]);
    placed.add(name);
    ordered.push({ service, name: row.name, columns: row.columns, key: row.key });
  };
  for (const row of rows) if (!(service === DIRECTORY_SERVICE && row.name === AUDIT_TABLE)) place(row.name, []);
  return ordered;
}

/** A district's tenant id as a SQL literal (COPY takes no parameters); anything but a UUID is refused. */
export function tenantLiteral(tenantId: string): string {
  if (!isUuid(tenantId)) throw new Error(`not a district UUID: ${JSON.stringify(tenantId)}`);
  return escapeLiteral(tenantId);
}

export const tableSql = (table: Pick<DistrictTable, 'name'>) => `public.${escapeIdentifier(table.name)}`;
export const qualifiedName = (table: Pick<DistrictTable, 'service' | 'name'>) => `${table.service}.${table.name}`;

const checksumExpression = `coalesce(sum(hash_record_extended(t, 0)::numeric), 0)::text`;

export interface TableFigures {
  rows: number;
  checksum: string;
}

/** One district's row count and checksum in one table. */
export async function districtFigures(client: pg.Client, table: DistrictTable, tenantId: string): Promise<TableFigures> {
  const { rows } = await client.query<{ rows: string; checksum: string }>(
    `select count(*)::text as rows, ${checksumExpression} as checksum from ${tableSql(table)} t where tenant_id = $1`,
    [tenantId],
  );
  return { rows: Number(rows[0]!.rows), checksum: rows[0]!.checksum };
}

/** Every district's row count and checksum in one table, in one pass: tenant id → figures. */
export async function everyDistrictFigures(client: pg.Client, table: DistrictTable): Promise<Map<string, TableFigures>> {
  const { rows } = await client.query<{ tenant: string; rows: string; checksum: string }>(
    `select tenant_id::text as tenant, count(*)::text as rows, ${checksumExpression} as checksum from ${tableSql(table)} t group by tenant_id`,
  );
  return new Map(rows.map((row) => [row.tenant, { rows: Number(row.rows), checksum: row.checksum }]));
}

export interface DistrictRecord {
  tenantId: string;
  name: string;
  slug: string;
  status: string;
}

/** The directory's row of a district named by its UUID or slug, or undefined. */
export async function findDistrict(directory: pg.Client, idOrSlug: string): Promise<DistrictRecord | undefined> {
  const { rows } = await directory.query<DistrictRecord>(
    `select tenant_id::text as "tenantId", name, slug, status from public.${escapeIdentifier(DIRECTORY_TABLE)}
      where ${isUuid(idOrSlug) ? 'tenant_id = $1::uuid' : 'slug = $1'}`,
    [idOrSlug],
  );
  return rows[0];
}

/** A refusal: a precondition not met or bad input (exit code 2, nothing changed). */
export class Refused extends Error {}
