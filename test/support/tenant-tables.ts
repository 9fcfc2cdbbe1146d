/**
 * The tenant tables of a running test platform, discovered from the catalog of every registered service's
 * database (every table with a `tenant_id` column), and their rows read as each database's owner (past RLS),
 * so the isolation battery and the feature steps attack and check every table a subgraph has, a newly
 * generated one included, without naming any.
 */
import type pg from 'pg';
import { directoryService } from '../../config/registry.ts';
import { DEMO_DISTRICTS } from '../../dev/seed.ts';
import { recordDistrictEvent } from '../../tools/district/audit.ts';
import type { TestPlatform } from './platform.ts';

const owners = new WeakMap<TestPlatform, Map<string, Promise<pg.Client>>>();

/** One owner connection per service database of a platform, opened once (the platform closes it on stop). */
export function ownerClient(platform: TestPlatform, service: string): Promise<pg.Client> {
  let clients = owners.get(platform);
  if (!clients) owners.set(platform, (clients = new Map()));
  let client = clients.get(service);
  if (!client) {
    const database = platform.databases[service];
    if (!database) throw new Error(`no ${service} database on this platform`);
    clients.set(service, (client = platform.connect(database.ownerUrl)));
  }
  return client;
}

export interface TenantTable {
  service: string;
  name: string;
  /** The primary key's columns after `tenant_id` (empty for a table keyed by the tenant alone). */
  key: string[];
  /** Every column, in table order. */
  columns: string[];
  rlsEnabled: boolean;
  rlsForced: boolean;
  policies: number;
}

/** A foreign key between two tenant tables of one database. */
export interface TenantForeignKey {
  service: string;
  name: string;
  table: string;
  columns: string[];
  references: string;
  referencedColumns: string[];
}

export async function discoverTenantTables(platform: TestPlatform): Promise<TenantTable[]> {
  const tables: TenantTable[] = [];
  for (const service of Object.keys(platform.databases)) {
    const owner = await ownerClient(platform, service);
    const { rows } = await owner.query<Omit<TenantTable, 'service'>>(
      `select c.relname as name,
              array(select a.attname::text from unnest(i.indkey::int2[]) with ordinality k(attnum, n)
                      join pg_attribute a on a.attrelid = c.oid and a.attnum = k.attnum
                     where a.attname <> 'tenant_id' order by k.n) as key,
              array(select a.attname::text from pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped order by a.attnum) as columns,
              c.relrowsecurity as "rlsEnabled", c.relforcerowsecurity as "rlsForced",
              (select count(*)::int from pg_policy p where p.polrelid = c.oid) as policies
         from pg_class c
         join pg_namespace n on n.oid = c.relnamespace
         left join pg_index i on i.indrelid = c.oid and i.indisprimary
        where n.nspname = 'public' and c.relkind in ('r', 'p')
          and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped)
        order by c.relname`,
    );
    tables.push(...rows.map((row) => ({ service, ...row })));
  }
  return tables;
}

export async function discoverForeignKeys(platform: TestPlatform): Promise<TenantForeignKey[]> {
  const keys: TenantForeignKey[] = [];
  for (const service of Object.keys(platform.databases)) {
    const owner = await ownerClient(platform, service);
    const { rows } = await owner.query<Omit<TenantForeignKey, 'service'>>(
      `select con.conname as name, child.relname as table, parent.relname as references,
              array(select a.attname::text from unnest(con.conkey) with ordinality k(attnum, n) join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.attnum order by k.n) as columns,
              array(select a.attname::text from unnest(con.confkey) with ordinality k(attnum, n) join pg_attribute a on a.attrelid = con.confrelid and a.attnum = k.attnum order by k.n) as "referencedColumns"
         from pg_constraint con
         join pg_class child on child.oid = con.conrelid
         join pg_class parent on parent.oid = con.confrelid
         join pg_namespace n on n.oid = child.relnamespace
        where con.contype = 'f' and n.nspname = 'public'
        order by con.conname`,
    );
    keys.push(...rows.map((row) => ({ service, ...row })));
  }
  return keys;
}

export const qualified = (table: Pick<TenantTable, 'service' | 'name'>) => `${table.service}.${table.name}`;

/** Names a row: its `id`, the tenant for a table keyed by the tenant alone, or its key columns joined with '/'. */
const rowKeySql = (table: TenantTable) =>
  table.key.length ? table.key.map((c) => `${quote(c)}::text`).join(` || '/' || `) : 'tenant_id::text';
export const quote = (identifier: string) => `"${identifier.replaceAll('"', '""')}"`;

/** Every row key of every table, by tenant, then by table name (a table name is unique across the services). */
export async function readTenantRows(platform: TestPlatform, tables: TenantTable[]): Promise<Record<string, Record<string, string[]>>> {
  const rows: Record<string, Record<string, string[]>> = {};
  for (const table of tables) {
    const owner = await ownerClient(platform, table.service);
    // Identifiers from the catalog, quoted.
    const { rows: found } = await owner.query<{ tenant_id: string; key: string }>(
      `select tenant_id::text, ${rowKeySql(table)} as key from ${quote(table.name)} order by 2`,
    );
    for (const row of found) ((rows[row.tenant_id] ??= {})[table.name] ??= []).push(row.key);
  }
  return rows;
}

/** Every uuid in a set of row keys (composite keys hold several). */
export const idsOf = (keys: Iterable<string>) => [...keys].flatMap((key) => key.split('/'));

/**
 * The audit trail holds no demo rows (only the operator CLI writes it, as the owner): one `create` event per demo
 * district, as `district create` records it, for tests that need rows in every tenant table.
 */
export async function auditDemoDistricts(platform: TestPlatform): Promise<void> {
  const directory = await ownerClient(platform, directoryService().name);
  for (const district of DEMO_DISTRICTS) await recordDistrictEvent(directory, district.tenantId, 'create', { slug: district.slug }, 'demo');
}
