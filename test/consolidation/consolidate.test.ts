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

/**
 * Every target table's business columns, written out here independently of tools/consolidation/tables.ts
 * (which both consolidate and reconcile use, so reconcile alone cannot show a mistake in it): each column is a
 * legacy column copied as is, or a reference to a target row (its own id included), compared by that row's legacy id.
 */
const REFERENCED = { school: 'districts', student: 'students', enrollment: 'students', staff_member: 'staff', section: 'staff' } as const;
type Column = { from: string; references?: keyof typeof REFERENCED };
const EXPECTED_TABLES: { service: 'districts' | 'students' | 'staff'; target: string; legacy: string; columns: Record<string, Column> }[] =
  [
    {
      service: 'districts',
      target: 'school',
      legacy: 'schools',
      columns: {
        id: { from: 'id', references: 'school' },
        name: { from: 'name' },
        created_at: { from: 'created_at' },
        legacy_id: { from: 'id' },
      },
    },
    {
      service: 'students',
      target: 'student',
      legacy: 'students',
      columns: {
        id: { from: 'id', references: 'student' },
        first_name: { from: 'first_name' },
        last_name: { from: 'last_name' },
        grade: { from: 'grade' },
        date_of_birth: { from: 'date_of_birth' },
        school_id: { from: 'school_id', references: 'school' },
        gpa: { from: 'gpa' },
        created_at: { from: 'created_at' },
        legacy_id: { from: 'id' },
      },
    },
    {
      service: 'students',
      target: 'enrollment',
      legacy: 'enrollments',
      columns: {
        id: { from: 'id', references: 'enrollment' },
        student_id: { from: 'student_id', references: 'student' },
        school_id: { from: 'school_id', references: 'school' },
        start_date: { from: 'start_date' },
        end_date: { from: 'end_date' },
        legacy_id: { from: 'id' },
      },
    },
    {
      service: 'staff',
      target: 'staff_member',
      legacy: 'staff',
      columns: {
        id: { from: 'id', references: 'staff_member' },
        first_name: { from: 'first_name' },
        last_name: { from: 'last_name' },
        email: { from: 'email' },
        role: { from: 'role' },
        school_id: { from: 'school_id', references: 'school' },
        legacy_id: { from: 'id' },
      },
    },
    {
      service: 'staff',
      target: 'section',
      legacy: 'sections',
      columns: {
        id: { from: 'id', references: 'section' },
        name: { from: 'name' },
        subject: { from: 'subject' },
        teacher_id: { from: 'teacher_id', references: 'staff_member' },
        school_id: { from: 'school_id', references: 'school' },
        legacy_id: { from: 'id' },
      },
    },
    {
      service: 'staff',
      target: 'section_student',
      legacy: 'section_rosters',
      columns: { section_id: { from: 'section_id', references: 'section' }, student_id: { from: 'student_id', references: 'student' } },
    },
  ];
const byContent = (a: unknown, b: unknown) => JSON.stringify(a).localeCompare(JSON.stringify(b));

const STUDENTS_QUERY =
  '{ district { name slug status } students(first: 100) { edges { node { id firstName lastName grade dateOfBirth } } } staff { email } sections { id students { id } } }';

describe('consolidate', () => {
  it('copies every table of every district and activates each one', async () => {
    expect(summary.districts.map((d) => d.slug)).toEqual(legacy.districts.map((d) => d.slug).sort());
    for (const district of summary.districts) {
      expect(district.status).toBe('active');
      expect(district.copied.map((c) => c.table)).toEqual(TABLES.map((t) => `${t.service}.${t.target}`));
    }
    const districts = await platform.connect(platform.databases.districts!.ownerUrl);
    const { rows } = await districts.query(
      'select tenant_id, slug, name, status from district where tenant_id = any($1::uuid[]) order by slug',
      [legacy.districts.map((d) => d.tenantId)],
    );
    expect(rows).toEqual(
      legacy.districts
        .map((d) => ({ tenant_id: d.tenantId, slug: d.slug, name: d.name, status: 'active' }))
        .sort((a, b) => a.slug.localeCompare(b.slug)),
    );
  });

  it('reconciles clean: same counts and checksums on both sides for every district and table', async () => {
    const report = await reconcileDistricts({
      source: legacy.source,
      targets: ownerTargets(platform),
      slugs: legacy.districts.map((d) => d.slug),
      jobs: 2,
    });
    expect(report.match).toBe(true);
    expect(report.districts).toHaveLength(10);
    for (const table of report.districts.flatMap((d) => d.tables)) {
      expect(table.sourceRows).toBeGreaterThan(0);
      expect(table.targetRows).toBe(table.sourceRows);
      expect(table.targetChecksum).toBe(table.sourceChecksum);
    }
    expect(report.sourceRows).toBe(summary.rows);
  });

  it("every table's business columns equal the legacy source's, checked without the consolidation's column mapping", async () => {
    expect(EXPECTED_TABLES.map((t) => `${t.service}.${t.target}`)).toEqual(TABLES.map((t) => `${t.service}.${t.target}`));
    const owners = Object.fromEntries(
      await Promise.all(
        Object.keys(platform.databases).map(async (s) => [s, await platform.connect(platform.databases[s]!.ownerUrl)] as const),
      ),
    );
    for (const district of legacy.districts) {
      const source = await legacy.connect(district.slug);
      // Target uuid → legacy id, per referenced table, read from the target itself.
      const legacyIds: Record<string, Map<string, number>> = {};
      for (const [table, service] of Object.entries(REFERENCED)) {
        const { rows } = await owners[service]!.query<{ id: string; legacy_id: number }>(
          `select id, legacy_id from ${table} where tenant_id = $1`,
          [district.tenantId],
        );
        legacyIds[table] = new Map(rows.map((r) => [r.id, r.legacy_id]));
      }
      for (const { service, target, legacy: legacyTable, columns } of EXPECTED_TABLES) {
        const { rows: targetRows, fields } = await owners[service]!.query(`select * from ${target} where tenant_id = $1`, [
          district.tenantId,
        ]);
        // A target column this list does not know (and so nobody checks) fails here.
        expect(fields.map((f) => f.name).sort(), `${target} columns`).toEqual(['tenant_id', ...Object.keys(columns)].sort());
        const { rows: sourceRows } = await source.query(`select * from ${legacyTable}`);
        expect(sourceRows.length, `${district.slug} ${legacyTable}`).toBeGreaterThan(0);
        const actual = targetRows.map((row) =>
          Object.fromEntries(
            Object.entries(columns).map(([name, column]) => [
              name,
              column.references ? (legacyIds[column.references]!.get(row[name]) ?? `unresolved ${row[name]}`) : row[name],
            ]),
          ),
        );
        const expected = sourceRows.map((row) =>
          Object.fromEntries(Object.entries(columns).map(([name, column]) => [name, row[column.from]])),
        );
        expect(actual.sort(byContent), `${district.slug} ${service}.${target}`).toEqual(expected.sort(byContent));
      }
    }
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
    const { rows } = await all.query(
      `select count(*) filter (where date_of_birth is null) as null_dob, count(*) filter (where gpa is null) as null_gpa, count(*) filter (where first_name || last_name ~ '[^\\x01-\\x7f]') as unicode from student where legacy_id is not null`,
    );
    expect(Object.values(rows[0]).every((n) => Number(n) > 0)).toBe(true);
  });

  it("no district's token reaches another district's rows", async () => {
    const [first, second] = legacy.districts;
    // The first district's students as the database holds them (read as the owner, not through the gateway).
    const owner = await platform.connect(platform.databases.students!.ownerUrl);
    const firstStudents = (
      await owner.query<{ id: string }>('select id from student where tenant_id = $1 order by legacy_id limit 5', [first!.tenantId])
    ).rows.map((r) => r.id);
    expect(firstStudents).toHaveLength(5);
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
      const { rows: columns } = await owner.query(
        `select column_name from information_schema.columns where table_schema = 'consolidation' and table_name = 'checkpoint' order by ordinal_position`,
      );
      expect(columns.map((c) => c.column_name)).toEqual(['district_id', 'table_name', 'rows', 'finished_at']);
      const { rows } = await owner.query(
        `select has_schema_privilege($1, 'consolidation', 'USAGE') as usage, has_table_privilege($1, 'consolidation.checkpoint', 'SELECT') as select`,
        [platform.databases[service]!.appRole],
      );
      expect(rows[0]).toEqual({ usage: false, select: false });
    }
  });
});
