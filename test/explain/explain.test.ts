/** `npm run explain`: the operator's answer to "why can't this district see this row". */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explainRow, formatExplanation } from '../../tools/explain/explain.ts';
import { demo, startTestPlatform, type TestPlatform } from '../support/platform.ts';

let platform: TestPlatform;
let northStudent: string;
let southStudent: string;
beforeAll(async () => {
  platform = await startTestPlatform({ districtStatusTtlMs: 0 });
  const owner = await platform.connect(platform.databases.students!.ownerUrl);
  const first = async (tenantId: string) =>
    (await owner.query('select id from student where tenant_id = $1 order by id limit 1', [tenantId])).rows[0].id;
  northStudent = await first(demo('north-valley').tenantId);
  southStudent = await first(demo('south-ridge').tenantId);
});
afterAll(() => platform?.stop());

const north = demo('north-valley').tenantId;
const south = demo('south-ridge').tenantId;
const explain = (tenantId: string, table: string, id: string) => explainRow(Object.values(platform.databases), { tenantId, table, id });
const POLICY = 'tenant_isolation';

describe('explain', () => {
  it("a district's own row: exists, owned by it, RLS on and forced, policy true, visible", async () => {
    const e = await explain(north, 'student', northStudent);
    expect(e).toMatchObject({
      database: platform.databases.students!.database,
      table: 'public.student',
      tenant: { id: north, district: { name: demo('north-valley').name, status: 'active' } },
      rls: { enabled: true, forced: true },
      owners: [{ tenantId: north, district: demo('north-valley').name }],
      visible: true,
    });
    expect(e.policies).toEqual([
      {
        name: POLICY,
        permissive: true,
        command: 'ALL',
        roles: ['public'],
        using: '(tenant_id = ( SELECT app.current_tenant_id() AS current_tenant_id))',
        withCheck: '(tenant_id = ( SELECT app.current_tenant_id() AS current_tenant_id))',
        usingForTenant: true,
        withCheckForTenant: true,
      },
    ]);
  });

  it("another district's row: names the owner and shows the policy evaluating to false", async () => {
    const e = await explain(north, 'public.student', southStudent);
    expect(e.visible).toBe(false);
    expect(e.owners).toEqual([{ tenantId: south, district: demo('south-ridge').name }]);
    expect(e.policies[0]).toMatchObject({ usingForTenant: false, withCheckForTenant: false });
    expect(e.reasons).toEqual([
      `the row belongs to ${demo('south-ridge').name} (${south}), not to ${north}`,
      `policy ${POLICY} (permissive, ALL) USING evaluates to false for ${north}`,
      `${north} cannot see this row`,
    ]);
  });

  it('a row that does not exist, and a district that is suspended', async () => {
    const owner = await platform.connect(platform.databases.districts!.ownerUrl);
    await owner.query("update district set status = 'suspended' where tenant_id = $1", [north]);
    try {
      const e = await explain(north, 'student', randomUUID());
      expect(e.owners).toEqual([]);
      expect(e.visible).toBe(false);
      expect(e.reasons[0]).toBe(`district ${north} is suspended: the gateway refuses its requests`);
      expect(e.reasons[1]).toMatch(/^no row of public\.student has id [0-9a-f-]{36}, in any district$/);
    } finally {
      await owner.query("update district set status = 'active' where tenant_id = $1", [north]);
    }
  });

  it('RLS switched off on the table is called out', async () => {
    const owner = await platform.connect(platform.databases.staff!.ownerUrl);
    const section = (await owner.query('select id from section where tenant_id = $1 limit 1', [south])).rows[0].id;
    await owner.query('alter table section disable row level security');
    try {
      const e = await explain(north, 'section', section);
      expect(e.rls).toEqual({ enabled: false, forced: true });
      expect(e.visible).toBe(true);
      expect(e.reasons).toContain("row-level security is NOT enabled on public.section: every role with SELECT sees every district's rows");
    } finally {
      await owner.query('alter table section enable row level security');
    }
  });

  it('the district table is looked up by its tenant id', async () => {
    const e = await explain(north, 'district', south);
    expect(e).toMatchObject({ table: 'public.district', owners: [{ tenantId: south }], visible: false });
  });

  it.each([
    ['not-a-uuid', 'student', randomUUID(), '--tenant must be a district UUID'],
    [north, 'student', "1' or '1'='1", '--id must be a UUID'],
    [north, 'no_such_table', randomUUID(), /^no tenant table named no_such_table in t_/],
    [north, 'section_student', randomUUID(), 'public.section_student has no id column; its key is (tenant_id, section_id, student_id)'],
  ])('refuses bad input clearly (%s, %s)', async (tenant, table, id, message) => {
    await expect(explain(tenant, table, id)).rejects.toThrow(message);
  });

  it('`npm run explain` prints the explanation for an operator, and exits 2 with one line on bad input', async () => {
    const cli = (...args: string[]) =>
      promisify(execFile)('node_modules/.bin/node', ['tools/explain/cli.ts', ...args], {
        env: {
          ...process.env,
          DATABASE_URL: platform.adminUrl,
          DB_PREFIX: platform.config.prefix,
          DATA_DIR: platform.config.dataDir,
          LOG_LEVEL: 'warn',
        },
      }).then(
        ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
        (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
      );
    const ok = await cli('--tenant', north, '--table', 'student', '--id', southStudent);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toBe(formatExplanation(await explain(north, 'student', southStudent)) + '\n');
    expect(ok.stdout).toContain('visible:    no');
    const json = await cli('--tenant', north, '--table', 'student', '--id', northStudent, '--json');
    expect(JSON.parse(json.stdout)).toMatchObject({ visible: true, owners: [{ tenantId: north }] });
    const bad = await cli('--tenant', north, '--table', 'student', '--id', 'x');
    expect(bad).toEqual({ code: 2, stdout: '', stderr: 'explain: --id must be a UUID\n' });
  });
});
