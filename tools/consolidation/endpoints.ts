/**
 * The two ends of a consolidation: legacy district databases (checked against the legacy schema before
 * anything is read) and the service databases as the owner role (checked to be migrated and to bypass
 * RLS), plus the checkpoint table that makes runs resumable.
 */
import type pg from 'pg';
import { LEGACY_TABLES } from '../legacy/schema.ts';
import { connect, type SourceTemplate } from '../legacy/source-url.ts';
import { CANONICAL_SETTINGS } from '../operator-cli.ts';
import { DIRECTORY, SERVICES, TABLES, type Service } from './tables.ts';

export type TargetClients = Record<Service, pg.Client>;

/** One round trip: the settings are constants, sent as one simple-protocol batch. */
async function applyCanonicalSettings(client: pg.Client): Promise<pg.Client> {
  await client.query(CANONICAL_SETTINGS.join('; '));
  return client;
}

export async function openSource(source: SourceTemplate, slug: string): Promise<pg.Client> {
  return applyCanonicalSettings(await connect(source.urlOf(slug), `legacy database ${source.databaseOf(slug)}`));
}

export async function openTargets(urls: Record<Service, string>): Promise<TargetClients> {
  const clients: Partial<TargetClients> = {};
  try {
    for (const service of SERVICES) {
      const url = urls[service];
      if (!url) throw new Error(`no target URL for the ${service} service database`);
      clients[service] = await applyCanonicalSettings(await connect(url, `the ${service} service database`));
    }
  } catch (error) {
    await closeAll(Object.values(clients).filter((c) => c !== undefined));
    throw error;
  }
  return clients as TargetClients;
}

export const closeAll = (clients: pg.Client[]) => Promise.all(clients.map((c) => c.end().catch(() => {})));

/** Column name → `format_type` of the tables of a database's public schema. */
async function columnTypes(client: pg.Client, tables: string[]): Promise<Map<string, Map<string, string>>> {
  const { rows } = await client.query<{ table: string; column: string; type: string }>(
    `select c.relname as table, a.attname as column, format_type(a.atttypid, a.atttypmod) as type
       from pg_class c join pg_namespace n on n.oid = c.relnamespace join pg_attribute a on a.attrelid = c.oid
      where n.nspname = 'public' and c.relkind in ('r', 'p') and c.relname = any($1::text[]) and a.attnum > 0 and not a.attisdropped`,
    [tables],
  );
  const result = new Map<string, Map<string, string>>();
  for (const row of rows) {
    if (!result.has(row.table)) result.set(row.table, new Map());
    result.get(row.table)!.set(row.column, row.type);
  }
  return result;
}

function schemaMismatches(
  actual: Map<string, Map<string, string>>,
  expected: { table: string; columns: Record<string, string> }[],
): string[] {
  const problems: string[] = [];
  for (const { table, columns } of expected) {
    const found = actual.get(table);
    if (!found) {
      problems.push(`table ${table} is missing`);
      continue;
    }
    for (const [column, type] of Object.entries(columns)) {
      const actualType = found.get(column);
      if (!actualType) problems.push(`${table}.${column} is missing`);
      else if (actualType !== type) problems.push(`${table}.${column} is ${actualType}, expected ${type}`);
    }
  }
  return problems;
}

/** Throws when the legacy database lacks a table or column the consolidation reads, or has another type. */
export async function verifyLegacySchema(client: pg.Client, database: string): Promise<void> {
  const actual = await columnTypes(
    client,
    LEGACY_TABLES.map((t) => t.name),
  );
  const problems = schemaMismatches(
    actual,
    LEGACY_TABLES.map((t) => ({ table: t.name, columns: t.columns })),
  );
  if (problems.length) throw new Error(`legacy database ${database} does not match the legacy schema: ${problems.join('; ')}`);
}

export async function readProfile(client: pg.Client, database: string): Promise<{ slug: string; name: string }> {
  const { rows } = await client.query<{ slug: string; name: string }>('select slug, name from district_profile');
  if (rows.length !== 1) throw new Error(`legacy database ${database}: district_profile must hold exactly one row, found ${rows.length}`);
  return rows[0]!;
}

/** Throws unless every target is migrated (every mapped column, with its type) and connected as a role that bypasses RLS. */
export async function verifyTargets(targets: TargetClients): Promise<void> {
  for (const service of SERVICES) {
    const client = targets[service]!;
    const expected = TABLES.filter((t) => t.service === service).map((t) => ({
      table: t.target,
      columns: Object.fromEntries([['tenant_id', 'uuid'] as const, ...t.columns.map((c) => [c.name, c.type] as const)]),
    }));
    if (service === DIRECTORY)
      expected.push({
        table: 'district',
        columns: { tenant_id: 'uuid', slug: 'character varying(100)', name: 'character varying(200)', status: 'text' },
      });
    const problems = schemaMismatches(
      await columnTypes(
        client,
        expected.map((e) => e.table),
      ),
      expected,
    );
    const database = (await client.query<{ db: string }>('select current_database() as db')).rows[0]!.db;
    if (problems.length) throw new Error(`target ${database} is not migrated (run npm run migrate): ${problems.join('; ')}`);
    const { rows } = await client.query<{ role: string; bypass: boolean }>(
      'select current_user as role, rolbypassrls as bypass from pg_roles where rolname = current_user',
    );
    // COPY FROM into a table with RLS is refused for roles that do not bypass it; only the owner role does.
    if (!rows[0]?.bypass)
      throw new Error(
        `target ${database}: role ${rows[0]?.role} does not bypass row-level security; connect as the owner role (<prefix>_owner)`,
      );
  }
}

/**
 * `consolidation.checkpoint` in each target: one row per finished (district, table) pair, written in the
 * same transaction as the pair's rows. `district_id`, not `tenant_id`: it is bookkeeping, not a tenant
 * table, and the application role gets no grant on it.
 */
export async function ensureCheckpointTable(client: pg.Client): Promise<void> {
  await client.query('create schema if not exists consolidation');
  await client.query('revoke all on schema consolidation from public');
  await client.query(`create table if not exists consolidation.checkpoint (
    district_id uuid not null,
    table_name text not null,
    rows bigint not null,
    finished_at timestamptz not null default now(),
    primary key (district_id, table_name))`);
}

/** Finished tables ("<service>.<table>") of a district, across the targets; none when no checkpoint table exists yet. */
export async function finishedTables(targets: TargetClients, tenantId: string): Promise<Set<string>> {
  const finished = new Set<string>();
  for (const service of SERVICES) {
    const { rows: exists } = await targets[service]!.query<{ present: boolean }>(
      `select to_regclass('consolidation.checkpoint') is not null as present`,
    );
    if (!exists[0]!.present) continue;
    const { rows } = await targets[service]!.query<{ table_name: string }>(
      'select table_name from consolidation.checkpoint where district_id = $1',
      [tenantId],
    );
    for (const row of rows) finished.add(`${service}.${row.table_name}`);
  }
  return finished;
}
