/** At the database: the application roles are plain, and RLS alone keeps them inside one tenant. */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { APP_ROLE_SETTINGS } from '../database/app-role-settings.ts';
import { OPERATOR_ONLY_TABLES, migrateService, provisionDatabases } from '../database/database.ts';
import { lintDatabase } from '../tools/policy-lint/lint.ts';
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

async function inTenant<T>(
  client: pg.Client,
  tenantId: string,
  work: () => Promise<T>,
  end: 'commit' | 'rollback' = 'rollback',
): Promise<T> {
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
  /** The tenant tables the application role works with: all but the operator's own (the audit trail). */
  let appTables: string[];
  beforeAll(async () => {
    app = await platform.connect(platform.databases[service]!.appUrl);
    owner = await platform.connect(platform.databases[service]!.ownerUrl);
    const { rows } = await owner.query<{ table_name: string }>(
      `select table_name from information_schema.columns where table_schema = 'public' and column_name = 'tenant_id' order by 1`,
    );
    tenantTables = rows.map((r) => r.table_name);
    appTables = tenantTables.filter((table) => !OPERATOR_ONLY_TABLES.has(table));
    expect(appTables.length).toBeGreaterThan(0);
  });

  it('the application role is not superuser, not BYPASSRLS, owns nothing, and holds no TRUNCATE, REFERENCES, DELETE or table-level UPDATE', async () => {
    const role = platform.databases[service]!.appRole;
    const { rows } = await owner.query('select rolsuper, rolbypassrls, rolcreaterole, rolcreatedb from pg_roles where rolname = $1', [
      role,
    ]);
    expect(rows).toEqual([{ rolsuper: false, rolbypassrls: false, rolcreaterole: false, rolcreatedb: false }]);
    const owned = await owner.query('select relname from pg_class where relowner = (select oid from pg_roles where rolname = $1)', [role]);
    expect(owned.rows).toEqual([]);
    for (const table of tenantTables) {
      const { rows: privileges } = await owner.query(
        `select has_table_privilege($1, $2, 'TRUNCATE') as truncate, has_table_privilege($1, $2, 'REFERENCES') as references,
                has_table_privilege($1, $2, 'DELETE') as delete, has_table_privilege($1, $2, 'UPDATE') as update,
                has_table_privilege($1, $2, 'SELECT') as select, has_table_privilege($1, $2, 'INSERT') as insert,
                has_column_privilege($1, $2, 'tenant_id', 'UPDATE') as update_tenant_id`,
        [role, `public.${table}`],
      );
      const granted = !OPERATOR_ONLY_TABLES.has(table);
      expect(privileges[0], table).toEqual({
        truncate: false,
        references: false,
        delete: false,
        update: false,
        select: granted,
        insert: granted,
        update_tenant_id: false,
      });
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
    for (const table of appTables) {
      expect(await count(owner, table)).toBeGreaterThan(0);
      expect(await count(app, table)).toBe(0);
      await expect(app.query(`insert into ${table} (tenant_id) values ($1)`, [north])).rejects.toThrow(/row-level security|null value/);
    }
  });

  it("with a tenant set, it sees only that tenant's rows, and after that transaction nothing again", async () => {
    for (const table of appTables) {
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

  it("cannot move a row to another tenant, change another tenant's rows, or delete anything", async () => {
    const table = appTables[0]!;
    const southRows = async () => (await owner.query(`select count(*)::int as n from ${table} where tenant_id = $1`, [south])).rows[0].n;
    const before = await southRows();
    expect(before, `${table} holds rows of South Ridge`).toBeGreaterThan(0);
    // A column outside the key, which the application role may update.
    const { rows } = await owner.query<{ column: string }>(
      `select attname as column from pg_attribute where attrelid = $1::regclass and attnum > 0 and not attisdropped
          and has_column_privilege($2, attrelid, attnum, 'UPDATE') order by attnum limit 1`,
      [`public.${table}`, platform.databases[service]!.appRole],
    );
    expect(rows).toHaveLength(1);
    const column = rows[0]!.column;
    await inTenant(app, north, async () => {
      await expect(app.query(`update ${table} set tenant_id = $1`, [south])).rejects.toThrow(`permission denied for table ${table}`);
    });
    await inTenant(
      app,
      north,
      async () => {
        // Another tenant's rows are invisible to UPDATE: nothing happens.
        expect((await app.query(`update ${table} set ${column} = ${column} where tenant_id = $1`, [south])).rowCount).toBe(0);
      },
      'commit',
    );
    expect(await southRows()).toBe(before);
    await inTenant(app, north, async () => {
      await expect(app.query(`delete from ${table} where tenant_id = $1`, [north])).rejects.toThrow(`permission denied for table ${table}`);
    });
  });

  it('cannot LOCK a tenant table in any mode that blocks other districts (ROW EXCLUSIVE is the most it gets)', async () => {
    for (const table of appTables) {
      for (const mode of ['share', 'share row exclusive', 'exclusive', 'access exclusive']) {
        await inTenant(app, north, async () => {
          await expect(app.query(`lock table ${table} in ${mode} mode nowait`)).rejects.toThrow(`permission denied for table ${table}`);
        });
      }
      // What INSERT allows: ROW EXCLUSIVE conflicts only with SHARE and stronger modes (DDL, owners), not with DML.
      await inTenant(app, north, () => app.query(`lock table ${table} in row exclusive mode nowait`));
    }
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

describe("the application role's session settings and what it sees of other sessions", () => {
  const students = () => platform.databases.students!;
  const urlFor = (database: string) => Object.assign(new URL(students().appUrl), { pathname: `/${database}` }).toString();
  /** What every `npm start` and `npm run migrate` runs first. */
  const reprovision = () =>
    provisionDatabases({
      adminUrl: platform.adminUrl,
      dataDir: platform.config.dataDir,
      prefix: platform.config.prefix,
      services: readRegistry(),
    });
  const show = async (client: pg.Client, name: string) =>
    (await client.query(`select current_setting($1) as value`, [name])).rows[0].value as string;

  it('every session starts with the pinned timeouts and track_activities off', async () => {
    const app = await platform.connect(students().appUrl);
    for (const [name, value] of Object.entries(APP_ROLE_SETTINGS)) expect(await show(app, name)).toBe(value);
  });

  it('cannot turn track_activities back on: not by SET, not by ALTER ROLE, not by RESET ALL, not as a startup option', async () => {
    const app = await platform.connect(students().appUrl);
    const denied = 'permission denied to set parameter "track_activities"';
    try {
      await expect(app.query('set track_activities = on')).rejects.toThrow(denied);
      await expect(app.query('alter role current_user set track_activities = on')).rejects.toThrow(denied);
      await expect(app.query('alter role current_user reset track_activities')).rejects.toThrow(denied);
      // A non-superuser's RESET ALL silently keeps the superuser-only entries.
      await app.query('alter role current_user reset all');
      await app
        .query(`select format('alter role current_user in database %I reset all', current_database())`)
        .then(({ rows }) => app.query(rows[0].format));
      expect(await show(await platform.connect(students().appUrl), 'track_activities')).toBe('off');
      const withOption = new pg.Client({ connectionString: students().appUrl, options: '-c track_activities=on' });
      await expect(withOption.connect()).rejects.toThrow(denied);
      await withOption.end().catch(() => {});
    } finally {
      // Restore what RESET ALL removed (the timeouts), as every start does.
      await reprovision();
    }
  });

  it("another session's query text (and its interpolated values) is hidden from the role's sessions in any database, and from the admin", async () => {
    const marker = `marker_${randomUUID().replaceAll('-', '')}`;
    const sleeper = await platform.connect(students().appUrl);
    const pid = (await sleeper.query('select pg_backend_pid() as pid')).rows[0].pid as number;
    const sleeping = sleeper.query(`select pg_sleep(3), '${marker}' as marker`);
    const observers = {
      'an application-role session in its database': await platform.connect(students().appUrl),
      'an application-role session in the postgres database': await platform.connect(urlFor('postgres')),
      admin: await platform.connect(platform.adminUrl),
    };
    for (const [who, observer] of Object.entries(observers)) {
      // Wait until the sleeper is visibly inside pg_sleep, so "no text" cannot mean "not started yet".
      let row: { state: string; query: string } | undefined;
      for (const deadline = Date.now() + 2500; !row;) {
        row = (await observer.query(`select state, query from pg_stat_activity where pid = $1 and wait_event = 'PgSleep'`, [pid])).rows[0];
        if (!row && Date.now() > deadline) throw new Error(`${who}: the sleeping session never showed up in pg_stat_activity`);
      }
      expect({ who, ...row }).toEqual({ who, state: 'disabled', query: '' });
    }
    await sleeping;
    // The control: a session of a role without the pin (the owner) does publish its text, read the same way.
    const owner = await platform.connect(students().ownerUrl);
    const ownerPid = (await owner.query('select pg_backend_pid() as pid')).rows[0].pid as number;
    const ownerSleeping = owner.query(`select pg_sleep(1), '${marker}' as marker`);
    // Its wait event can show before its text does (two fields of the backend's status, not read as one): poll for the text.
    let text: string | undefined;
    for (const deadline = Date.now() + 900; !text?.includes(marker);) {
      text = (await observers.admin.query(`select query from pg_stat_activity where pid = $1 and wait_event = 'PgSleep'`, [ownerPid]))
        .rows[0]?.query;
      if (!text?.includes(marker) && Date.now() > deadline)
        throw new Error(`the owner session's text never showed up in pg_stat_activity (last: ${text})`);
    }
    expect(text).toContain(marker);
    await ownerSleeping;
  });

  it('what remains: it can rewrite its own timeouts for its future sessions; the linter reports that and the next provisioning restores them', async () => {
    const app = await platform.connect(students().appUrl);
    const database = students().database;
    try {
      await app
        .query(`select format('alter role current_user in database %I set statement_timeout = 0', current_database())`)
        .then(({ rows }) => app.query(rows[0].format));
      expect(await show(await platform.connect(students().appUrl), 'statement_timeout')).toBe('0');
      const owner = await platform.connect(students().ownerUrl);
      expect(await lintDatabase(owner, { appRoles: [students().appRole] })).toEqual([
        {
          rule: 'app-role-settings-not-pinned',
          database,
          object: students().appRole,
          detail: `statement_timeout is 0 for its sessions here, not the pinned ${APP_ROLE_SETTINGS.statement_timeout}`,
        },
      ]);
      await reprovision();
      expect(await show(await platform.connect(students().appUrl), 'statement_timeout')).toBe(APP_ROLE_SETTINGS.statement_timeout);
      expect(await lintDatabase(owner, { appRoles: [students().appRole] })).toEqual([]);
    } finally {
      await reprovision();
    }
  });
});
