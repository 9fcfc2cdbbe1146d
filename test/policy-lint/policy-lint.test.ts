/**
 * The policy linter: each rule reports exactly the flaw planted for it in a scratch database (and
 * nothing else does), a clean database passes, and the shipped platform databases have 0 findings.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { APP_ROLE_SETTINGS } from '../../database/app-role-settings.ts';
import { lintDatabase } from '../../tools/policy-lint/lint.ts';
import { rules } from '../../tools/policy-lint/rules/index.ts';
import { outsideSubselects } from '../../tools/policy-lint/rules/per-row-setting.ts';
import { unpatchedVulnerabilities } from '../../tools/policy-lint/rules/server-below-patch-floor.ts';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { createScratchDatabase, type ScratchDatabase } from './scratch.ts';

let scratch: ScratchDatabase;
beforeAll(async () => {
  scratch = await createScratchDatabase(inject('adminUrl'));
});
afterAll(() => scratch?.drop());

const CURRENT = '(select app.current_tenant_id())';
const replacePolicy = (table: string, clauses: string) => [
  `drop policy tenant_isolation on public.${table}`,
  `create policy tenant_isolation on public.${table} ${clauses}`,
];

/** Runs `plant` in a transaction, lints, rolls back. */
async function lintWith(plant: string[]) {
  const { client, appRole } = scratch;
  await client.query('begin');
  try {
    for (const sql of plant) await client.query(sql.replaceAll('$APP', appRole));
    return await lintDatabase(client, { appRoles: [appRole] });
  } finally {
    await client.query('rollback');
  }
}

interface Plant {
  flaw: string;
  rule: string;
  sql: string[];
  /** Exactly the findings expected, as [object, detail]. */
  expected: [string, string][];
  /** Other rules this flaw necessarily triggers as well. */
  also?: string[];
}

const plants: Plant[] = [
  {
    flaw: 'a new tenant table without RLS',
    rule: 'rls-not-enabled',
    sql: ['create table public.note (tenant_id uuid not null, id uuid not null, body text, primary key (tenant_id, id))'],
    expected: [['public.note', 'has a tenant_id column but row-level security is not enabled']],
  },
  {
    flaw: 'RLS enabled but not forced',
    rule: 'rls-not-forced',
    sql: ['alter table public.student no force row level security'],
    expected: [['public.student', 'row-level security is enabled but not forced (FORCE ROW LEVEL SECURITY)']],
  },
  {
    flaw: 'RLS enabled with no policy',
    rule: 'rls-without-policy',
    sql: ['drop policy tenant_isolation on public.student'],
    expected: [['public.student', 'row-level security is enabled but the table has no policy']],
  },
  {
    flaw: 'a SELECT-only policy (INSERT, UPDATE, DELETE not covered)',
    rule: 'command-not-covered',
    sql: [
      'drop policy tenant_isolation on public.student',
      `create policy tenant_read on public.student for select using (tenant_id = ${CURRENT})`,
    ],
    expected: [
      ['public.student', 'no permissive policy covers DELETE'],
      ['public.student', 'no permissive policy covers INSERT'],
      ['public.student', 'no permissive policy covers UPDATE'],
    ],
  },
  {
    flaw: 'a write policy without WITH CHECK',
    rule: 'command-not-covered',
    sql: replacePolicy('student', `using (tenant_id = ${CURRENT})`),
    expected: [['public.student', 'write policy tenant_isolation has no WITH CHECK']],
  },
  {
    flaw: 'a policy that ORs in an IS NULL escape',
    rule: 'permissive-escape',
    sql: replacePolicy('student', `using (tenant_id = ${CURRENT} or ${CURRENT} is null) with check (tenant_id = ${CURRENT})`),
    expected: [['public.student', 'permissive policy tenant_isolation USING ORs in an IS NULL escape']],
  },
  {
    flaw: 'an always-true policy',
    rule: 'permissive-escape',
    sql: replacePolicy('student', `using (true) with check (tenant_id = ${CURRENT})`),
    expected: [['public.student', 'permissive policy tenant_isolation USING does not depend on the row (always true or always false)']],
  },
  {
    flaw: 'a second permissive policy',
    rule: 'multiple-permissive',
    sql: [`create policy reporting on public.student for select using (tenant_id = ${CURRENT})`],
    expected: [['public.student', '2 permissive policies apply to SELECT and OR together: reporting, tenant_isolation']],
  },
  {
    flaw: 'the helper called per row',
    rule: 'per-row-setting',
    sql: replacePolicy('student', `using (tenant_id = app.current_tenant_id()) with check (tenant_id = ${CURRENT})`),
    expected: [['public.student', 'policy tenant_isolation USING calls the tenant setting per row instead of through (select …)']],
  },
  {
    flaw: 'current_setting called per row',
    rule: 'per-row-setting',
    sql: replacePolicy(
      'student',
      `using (tenant_id = ${CURRENT}) with check (tenant_id = nullif(current_setting('app.current_tenant', true), '')::uuid)`,
    ),
    expected: [['public.student', 'policy tenant_isolation WITH CHECK calls the tenant setting per row instead of through (select …)']],
  },
  {
    flaw: 'a BYPASSRLS application role',
    rule: 'privileged-app-role',
    sql: ['alter role $APP bypassrls'],
    expected: [['$APP', 'has BYPASSRLS']],
  },
  {
    flaw: 'an application role that owns a tenant table',
    rule: 'privileged-app-role',
    sql: ['alter table public.enrollment owner to $APP'],
    // An owner holds every privilege on its table, so the TRUNCATE/REFERENCES and LOCK rules rightly fire too.
    also: ['app-role-truncate-references', 'app-role-can-lock-tables'],
    expected: [['$APP', 'owns tenant table public.enrollment']],
  },
  {
    flaw: 'an application role that is a member of a BYPASSRLS role',
    rule: 'privileged-app-role',
    sql: ['create role lint_escalation nologin bypassrls', 'grant lint_escalation to $APP'],
    expected: [['$APP', 'is a member of lint_escalation, which has BYPASSRLS']],
  },
  {
    flaw: 'a foreign key that pairs tenant_id with the wrong column',
    rule: 'foreign-key-without-tenant',
    sql: [
      'alter table public.enrollment add constraint enrollment_swapped_fk foreign key (student_id, tenant_id) references public.student (tenant_id, id)',
    ],
    expected: [['public.enrollment', 'foreign key enrollment_swapped_fk does not pair tenant_id with the referenced tenant_id']],
  },
  {
    flaw: 'a unique constraint without tenant_id',
    rule: 'key-not-leading-tenant',
    sql: ['alter table public.student add constraint student_name_key unique (name)'],
    expected: [['public.student', 'unique index student_name_key does not lead with tenant_id']],
  },
  {
    flaw: 'a tenant table without a tenant_id index',
    rule: 'no-tenant-index',
    sql: [
      'create table public.note (tenant_id uuid not null, body text)',
      'alter table public.note enable row level security',
      'alter table public.note force row level security',
      `create policy tenant_isolation on public.note using (tenant_id = ${CURRENT}) with check (tenant_id = ${CURRENT})`,
    ],
    expected: [['public.note', 'has no index whose first column is tenant_id']],
  },
  {
    flaw: 'a view without security_invoker',
    rule: 'view-not-security-invoker',
    sql: ['create view public.roster as select s.tenant_id, s.name from public.student s join public.enrollment e using (tenant_id)'],
    expected: [['public.roster', 'view over tenant tables without security_invoker']],
  },
  {
    flaw: 'a SECURITY DEFINER function reading a tenant table',
    rule: 'unsafe-function',
    sql: [
      'create function public.student_total() returns bigint language sql security definer set search_path = pg_catalog, public as $$ select count(*) from public.student $$',
    ],
    expected: [['public.student_total()', 'SECURITY DEFINER function that reads tenant tables']],
  },
  {
    flaw: 'a function with a mutable search_path',
    rule: 'unsafe-function',
    sql: ['create function public.next_grade(grade integer) returns integer language sql immutable as $$ select grade + 1 $$'],
    expected: [['public.next_grade(grade integer)', 'search_path is not fixed (add SET search_path = pg_catalog, pg_temp)']],
  },
  {
    flaw: 'TRUNCATE and REFERENCES granted to the application role',
    rule: 'app-role-truncate-references',
    sql: ['grant truncate, references on public.student to $APP'],
    expected: [
      ['$APP', 'holds REFERENCES on public.student'],
      ['$APP', 'holds TRUNCATE on public.student'],
    ],
  },
  {
    flaw: 'table-level DELETE and UPDATE granted to the application role',
    rule: 'app-role-can-lock-tables',
    sql: ['grant delete on public.student to $APP', 'grant update on public.enrollment to $APP'],
    expected: [
      ['$APP', 'holds table-level DELETE on public.student, so it may LOCK it in ACCESS EXCLUSIVE mode (grant UPDATE per column instead)'],
      [
        '$APP',
        'holds table-level UPDATE on public.enrollment, so it may LOCK it in ACCESS EXCLUSIVE mode (grant UPDATE per column instead)',
      ],
    ],
  },
  {
    flaw: 'the application role overriding its pinned timeouts in this database and adding a default of its own',
    rule: 'app-role-settings-not-pinned',
    sql: [
      // What an application-role session can do to itself: the database-specific entry wins over the role-wide pin.
      `do $$ begin execute format('alter role %I in database %I set statement_timeout = 0', '$APP', current_database()); end $$`,
      `alter role $APP set work_mem = '2GB'`,
    ],
    expected: [
      ['$APP', `statement_timeout is 0 for its sessions here, not the pinned ${APP_ROLE_SETTINGS.statement_timeout}`],
      ['$APP', 'sets work_mem=2GB for its own sessions (only the pinned settings belong there)'],
    ],
  },
  {
    flaw: 'a pinned timeout reset',
    rule: 'app-role-settings-not-pinned',
    sql: ['alter role $APP reset lock_timeout'],
    expected: [['$APP', `lock_timeout is not pinned (provisioning sets ${APP_ROLE_SETTINGS.lock_timeout})`]],
  },
  {
    flaw: 'track_activities not pinned off',
    rule: 'app-role-sees-other-sessions',
    sql: ['alter role $APP reset track_activities'],
    expected: [['$APP', "track_activities is not pinned off: every session of the role reads the others' query text in pg_stat_activity"]],
  },
  {
    flaw: 'an application role in pg_read_all_stats',
    rule: 'app-role-sees-other-sessions',
    sql: ['grant pg_read_all_stats to $APP'],
    expected: [['$APP', 'is a member of pg_read_all_stats: reads the query text of every session']],
  },
];

describe('policy linter on a scratch database', () => {
  it('a clean database has 0 findings', async () => {
    expect(await lintDatabase(scratch.client, { appRoles: [scratch.appRole] })).toEqual([]);
  });

  it('every rule has a planted-flaw test here', () => {
    const planted = new Set([...plants.map((p) => p.rule), 'server-below-patch-floor']);
    expect(rules.map((r) => r.name).filter((name) => !planted.has(name))).toEqual([]);
    for (const rule of rules) expect(rule.rationale).toMatch(/^[^\n]{20,200}$/);
  });

  it.each(plants)('$rule: reports $flaw, and no other rule fires', async ({ rule, sql, expected, also = [] }) => {
    const findings = await lintWith(sql);
    const expand = (text: string) => text.replaceAll('$APP', scratch.appRole);
    const own = findings.filter((f) => f.rule === rule);
    expect(own.map((f) => [f.object, f.detail]).sort()).toEqual(
      expected.map(([object, detail]) => [expand(object), expand(detail)]).sort(),
    );
    expect([...new Set(findings.filter((f) => f.rule !== rule).map((f) => f.rule))]).toEqual(also);
  });
});

describe('server-below-patch-floor', () => {
  it.each([
    [150003, ['PostgreSQL 15.3 is below 15.9, the fix for CVE-2024-10976', 'PostgreSQL 15.3 is below 15.4, the fix for CVE-2023-39418']],
    [150008, ['PostgreSQL 15.8 is below 15.9, the fix for CVE-2024-10976']],
    [160004, ['PostgreSQL 16.4 is below 16.5, the fix for CVE-2024-10976']],
    [170000, ['PostgreSQL 17.0 is below 17.1, the fix for CVE-2024-10976']],
    [110022, ['PostgreSQL 11 is out of support and unpatched for CVE-2024-10976, CVE-2023-39418']],
  ])('server_version_num %i is reported', (version, expected) => {
    expect(unpatchedVulnerabilities(version)).toEqual(expected);
  });

  it.each([150009, 150020, 160005, 160014, 170001, 180000])('server_version_num %i passes', (version) => {
    expect(unpatchedVulnerabilities(version)).toEqual([]);
  });
});

describe('per-row detection', () => {
  it('ignores calls inside sub-selects and string literals only', () => {
    expect(outsideSubselects('(tenant_id = ( SELECT app.current_tenant_id() AS current_tenant_id))')).toBe('(tenant_id = )');
    expect(outsideSubselects("(note <> 'current_setting(x)') AND (tenant_id = current_setting('a'))")).toBe(
      '(note <> ) AND (tenant_id = current_setting())',
    );
  });
});

describe('the shipped databases', () => {
  let platform: TestPlatform;
  beforeAll(async () => {
    platform = await startTestPlatform();
  });
  afterAll(() => platform?.stop());

  const cli = (...args: string[]) =>
    promisify(execFile)('node_modules/.bin/node', ['tools/policy-lint/cli.ts', ...args], {
      env: {
        ...process.env,
        DATABASE_URL: platform.adminUrl,
        DB_PREFIX: platform.config.prefix,
        DATA_DIR: platform.config.dataDir,
        LOG_LEVEL: 'warn',
      },
    }).then(
      ({ stdout }) => ({ code: 0, stdout }),
      (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout + error.stderr }),
    );

  it('`npm run check:policies` finds nothing on a freshly migrated platform (exit 0)', async () => {
    const { code, stdout } = await cli('--json');
    expect(code).toBe(0);
    const report = JSON.parse(stdout);
    expect(report).toEqual({ databases: Object.values(platform.databases).map((db) => db.database), rules: rules.length, findings: [] });
  });

  it('exits 1 with a table naming the flaw when one is planted, and 0 again once it is fixed', async () => {
    const owner = await platform.connect(platform.databases.students!.ownerUrl);
    await owner.query('alter table student no force row level security');
    try {
      const { code, stdout } = await cli();
      expect(code).toBe(1);
      expect(stdout).toMatch(
        new RegExp(
          `${platform.databases.students!.database}\\s+rls-not-forced\\s+public\\.student\\s+row-level security is enabled but not forced`,
        ),
      );
      expect(stdout).toContain(`1 finding(s) in ${Object.keys(platform.databases).length} database(s), ${rules.length} rules`);
    } finally {
      await owner.query('alter table student force row level security');
    }
    expect((await cli()).code).toBe(0);
  });
});
