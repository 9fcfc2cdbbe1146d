/** At the database: the application roles are plain, and RLS alone keeps them inside one tenant. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { migrateService } from '../database/database.ts';
import { readRegistry } from '../config/registry.ts';
import { demo, startTestPlatform, type TestPlatform } from './support/platform.ts';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform();
});
afterAll(() => platform?.stop());

const north = demo('north-valley').tenantId;
const south = demo('south-ridge').tenantId;
const services = readRegistry().map((s) => s.name);

async function inTenant<T>(client: pg.Client, tenantId: string, work: () => Promise<T>, end: 'commit' | 'rollback' = 'rollback'): Promise<T> {
  await client.query('begin');
  try {
    await client.query("select set_config('app.current_tenant', $1, true)", [tenantId]);
    const result = await work();
    await client.query(end);
    return result;
  } catch (error) {
    await client.query('rollback');
    throw error;
  }
}

const count = async (client: pg.Client, table: string) => Number((await client.query(`select count(*) from ${table}`)).rows[0].count);

describe.each(services)('%s database', (service) => {
  let app: pg.Client;
  let owner: pg.Client;
  let tenantTables: string[];
  beforeAll(async () => {
    app = await platform.connect(platform.databases[service]!.appUrl);
    owner = await platform.connect(platform.databases[service]!.ownerUrl);
    const { rows } = await owner.query<{ table_name: string }>(
      `select table_name from information_schema.columns where table_schema = 'public' and column_name = 'tenant_id' order by 1`,
    );
    tenantTables = rows.map((r) => r.table_name);
    expect(tenantTables.length).toBeGreaterThan(0);
  });

  it('the application role is not superuser, not BYPASSRLS, owns nothing, and holds no TRUNCATE or REFERENCES', async () => {
    const role = platform.databases[service]!.appRole;
    const { rows } = await owner.query('select rolsuper, rolbypassrls, rolcreaterole, rolcreatedb from pg_roles where rolname = $1', [role]);
    expect(rows).toEqual([{ rolsuper: false, rolbypassrls: false, rolcreaterole: false, rolcreatedb: false }]);
    const owned = await owner.query('select relname from pg_class where relowner = (select oid from pg_roles where rolname = $1)', [role]);
    expect(owned.rows).toEqual([]);
    for (const table of tenantTables) {
      const { rows: privileges } = await owner.query(
        `select has_table_privilege($1, $2, 'TRUNCATE') as truncate, has_table_privilege($1, $2, 'REFERENCES') as references,
                has_table_privilege($1, $2, 'SELECT') as select`,
        [role, `public.${table}`],
      );
      expect(privileges[0]).toEqual({ truncate: false, references: false, select: true });
    }
    expect((await app.query('select current_user')).rows[0].current_user).toBe(role);
  });

  it('every tenant table has RLS enabled and forced, with a policy', async () => {
    const { rows } = await owner.query(
      `select c.relname, c.relrowsecurity, c.relforcerowsecurity, (select count(*)::int from pg_policy p where p.polrelid = c.oid) as policies
         from pg_class c where c.relname = any($1) and c.relnamespace = 'public'::regnamespace order by 1`,
      [tenantTables],
    );
    expect(rows.map((row) => row.relname)).toEqual(tenantTables);
    for (const row of rows) expect(row).toMatchObject({ relrowsecurity: true, relforcerowsecurity: true, policies: 1 });
  });

  it('with no tenant set, the application role sees 0 rows and cannot insert', async () => {
    for (const table of tenantTables) {
      expect(await count(owner, table)).toBeGreaterThan(0);
      expect(await count(app, table)).toBe(0);
      await expect(app.query(`insert into ${table} (tenant_id) values ($1)`, [north])).rejects.toThrow(/row-level security|null value/);
    }
  });

  it("with a tenant set, it sees only that tenant's rows, and after that transaction nothing again", async () => {
    for (const table of tenantTables) {
      const total = await count(owner, table);
      const { rows } = await owner.query(`select count(*)::int as n from ${table} where tenant_id = $1`, [north]);
      expect(rows[0].n, `${table} holds rows of North Valley`).toBeGreaterThan(0);
      const visible = await inTenant(app, north, async () => {
        const foreign = await app.query(`select count(*)::int as n from ${table} where tenant_id <> $1`, [north]);
        expect(foreign.rows[0].n).toBe(0);
        return count(app, table);
      });
      expect(visible).toBe(rows[0].n);
      expect(visible).toBeLessThan(total);
      // The setting is now '' on this connection, which must read as "no tenant".
      expect((await app.query("select current_setting('app.current_tenant', true) as v")).rows[0].v).toBe('');
      expect(await count(app, table)).toBe(0);
    }
  });

  it("cannot write a row for another tenant, nor move one there", async () => {
    const table = tenantTables[0]!;
    const southRows = async () => (await owner.query(`select count(*)::int as n from ${table} where tenant_id = $1`, [south])).rows[0].n;
    const before = await southRows();
    expect(before, `${table} holds rows of South Ridge`).toBeGreaterThan(0);
    await inTenant(app, north, async () => {
      await expect(app.query(`update ${table} set tenant_id = $1`, [south])).rejects.toThrow(/row-level security/);
    });
    await inTenant(app, north, async () => {
      // Another tenant's rows are invisible to UPDATE and DELETE: nothing happens.
      expect((await app.query(`delete from ${table} where tenant_id = $1`, [south])).rowCount).toBe(0);
    }, 'commit');
    expect(await southRows()).toBe(before);
  });

  it('a second migration run changes nothing', async () => {
    const schemaOf = async () =>
      (
        await owner.query(
          `select string_agg(format('%s %s %s', tablename, policyname, qual), ';' order by tablename, policyname) as s from pg_policies`,
        )
      ).rows[0].s;
    const before = await schemaOf();
    expect(await migrateService(platform.databases[service]!)).toEqual([]);
    expect(await schemaOf()).toBe(before);
  });
});
