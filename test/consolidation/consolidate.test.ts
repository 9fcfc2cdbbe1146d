/** Ten legacy districts consolidated, reconciled clean, and served by the gateway to each district alone. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consolidate, type ConsolidationSummary } from '../../tools/consolidation/consolidate.ts';
import { reconcileDistricts } from '../../tools/consolidation/reconcile.ts';
import { TABLES } from '../../tools/consolidation/tables.ts';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { createLegacyDistricts, ownerTargets, targetFingerprint, type LegacyFixture } from './legacy.ts';

let platform: TestPlatform;
let legacy: LegacyFixture;
let summary: ConsolidationSummary;
const STUDENTS = 40;

beforeAll(async () => {
  platform = await startTestPlatform({ districtStatusTtlMs: 0 });
  legacy = await createLegacyDistricts(platform.adminUrl, 10, STUDENTS);
  summary = await consolidate({ source: legacy.source, targets: ownerTargets(platform), districts: 'all', jobs: 2, statusTtlMs: 0 });
});
afterAll(async () => {
  await legacy?.drop();
  await platform?.stop();
});

const STUDENTS_QUERY = '{ district { name slug status } students(first: 100) { edges { node { id firstName lastName grade dateOfBirth } } } staff { email } sections { id students { id } } }';

describe('consolidate', () => {
  it('copies every table of every district and activates each one', async () => {
    expect(summary.districts.map((d) => d.slug)).toEqual(legacy.districts.map((d) => d.slug).sort());
    for (const district of summary.districts) {
      expect(district.status).toBe('active');
      expect(district.copied.map((c) => c.table)).toEqual(TABLES.map((t) => `${t.service}.${t.target}`));
    }
    const districts = await platform.connect(platform.databases.districts!.ownerUrl);
    const { rows } = await districts.query('select tenant_id, slug, name, status from district where tenant_id = any($1::uuid[]) order by slug', [legacy.districts.map((d) => d.tenantId)]);
    expect(rows).toEqual(legacy.districts.map((d) => ({ tenant_id: d.tenantId, slug: d.slug, name: d.name, status: 'active' })).sort((a, b) => a.slug.localeCompare(b.slug)));
  });

  it('reconciles clean: same counts and checksums on both sides for every district and table', async () => {
    const report = await reconcileDistricts({ source: legacy.source, targets: ownerTargets(platform), slugs: legacy.districts.map((d) => d.slug), jobs: 2 });
    expect(report.match).toBe(true);
    expect(report.districts).toHaveLength(10);
    for (const table of report.districts.flatMap((d) => d.tables)) {
      expect(table.sourceRows).toBeGreaterThan(0);
      expect(table.targetRows).toBe(table.sourceRows);
      expect(table.targetChecksum).toBe(table.sourceChecksum);
    }
    expect(report.sourceRows).toBe(summary.rows);
  });

  it('the gateway serves each district its own consolidated rows, unicode, NULLs and dates intact', async () => {
    for (const district of legacy.districts) {
      const source = await legacy.connect(district.slug);
      const expected = await source.query(
        `select first_name as "firstName", last_name as "lastName", grade, to_char(date_of_birth, 'YYYY-MM-DD') as "dateOfBirth" from students order by last_name, first_name, id`,
      );
      const { status, body } = await platform.as(district.tenantId, STUDENTS_QUERY);
      expect(status).toBe(200);
      expect(body.errors).toBeUndefined();
      expect(body.data.district).toEqual({ name: district.name, slug: district.slug, status: 'ACTIVE' });
      const students = body.data.students.edges.map((e: { node: Record<string, unknown> }) => e.node);
      expect(students.map(({ id: _id, ...rest }: Record<string, unknown>) => rest)).toEqual(expected.rows);
      const rosterSize = body.data.sections.reduce((n: number, s: { students: unknown[] }) => n + s.students.length, 0);
      expect(rosterSize).toBe(STUDENTS * 4);
      expect(body.data.staff.every((s: { email: string }) => s.email.endsWith(`@${district.slug}.example.org`))).toBe(true);
    }
    // NULLs and non-ASCII names made it through somewhere in the set.
    const all = await platform.connect(platform.databases.students!.ownerUrl);
    const { rows } = await all.query(`select count(*) filter (where date_of_birth is null) as null_dob, count(*) filter (where gpa is null) as null_gpa, count(*) filter (where first_name || last_name ~ '[^\\x01-\\x7f]') as unicode from student where legacy_id is not null`);
    expect(Object.values(rows[0]).every((n) => Number(n) > 0)).toBe(true);
  });

  it("no district's token reaches another district's rows", async () => {
    const [first, second] = legacy.districts;
    const firstStudents = (await platform.as(first!.tenantId, '{ students(first: 5) { edges { node { id } } } }')).body.data.students.edges.map((e: { node: { id: string } }) => e.node.id);
    for (const id of firstStudents) {
      const { body } = await platform.as(second!.tenantId, 'query($id: ID!) { student(id: $id) { id firstName } }', { id });
      expect(body.data.student).toBeNull();
    }
    const mine = await platform.as(first!.tenantId, 'query($id: ID!) { student(id: $id) { id } }', { id: firstStudents[0] });
    expect(mine.body.data.student).toEqual({ id: firstStudents[0] });
  });

  it('running it again is a no-op', async () => {
    const before = await targetFingerprint(platform);
    const again = await consolidate({ source: legacy.source, targets: ownerTargets(platform), districts: 'all', jobs: 2, statusTtlMs: 0 });
    expect(again.rows).toBe(0);
    expect(again.districts.every((d) => d.state === 'done' && d.copied.length === 0 && d.status === 'active')).toBe(true);
    expect(await targetFingerprint(platform)).toEqual(before);
  });

  it('the checkpoint table is not a tenant table and the application role cannot touch it', async () => {
    for (const service of ['districts', 'students', 'staff'] as const) {
      const owner = await platform.connect(platform.databases[service]!.ownerUrl);
      const { rows: columns } = await owner.query(`select column_name from information_schema.columns where table_schema = 'consolidation' and table_name = 'checkpoint' order by ordinal_position`);
      expect(columns.map((c) => c.column_name)).toEqual(['district_id', 'table_name', 'rows', 'finished_at']);
      const { rows } = await owner.query(`select has_schema_privilege($1, 'consolidation', 'USAGE') as usage, has_table_privilege($1, 'consolidation.checkpoint', 'SELECT') as select`, [platform.databases[service]!.appRole]);
      expect(rows[0]).toEqual({ usage: false, select: false });
    }
  });
});
