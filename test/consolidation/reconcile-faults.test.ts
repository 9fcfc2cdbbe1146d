/** Planted faults, one per class, are each named by reconcile: district, table and ids. */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { consolidate } from '../../tools/consolidation/consolidate.ts';
import { reconcileDistricts, type ReconciliationReport, type TableReport } from '../../tools/consolidation/reconcile.ts';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { createLegacyDistricts, ownerTargets, type LegacyFixture } from './legacy.ts';

let platform: TestPlatform;
let legacy: LegacyFixture;
let report: ReconciliationReport;
let students: pg.Client;
let staff: pg.Client;
let districts: pg.Client;

/** The target id of a legacy row, read from the target itself. */
const idOf = async (client: pg.Client, table: string, tenantId: string, legacyId: number) =>
  (await client.query(`select id::text from ${table} where tenant_id = $1 and legacy_id = $2`, [tenantId, legacyId])).rows[0].id as string;

const planted: Record<string, string> = {};

beforeAll(async () => {
  platform = await startTestPlatform();
  legacy = await createLegacyDistricts(platform.adminUrl, 4, 60);
  await consolidate({ source: legacy.source, targets: ownerTargets(platform), districts: 'all', jobs: 2, statusTtlMs: 0 });
  students = await platform.connect(platform.databases.students!.ownerUrl);
  staff = await platform.connect(platform.databases.staff!.ownerUrl);
  districts = await platform.connect(platform.databases.districts!.ownerUrl);
  const [a, b, c, d] = legacy.districts.map((x) => x.tenantId) as [string, string, string, string];

  // Delete a row (A): enrollment 12.
  planted.deleted = await idOf(students, 'enrollment', a, 12);
  await students.query('delete from enrollment where tenant_id = $1 and id = $2', [a, planted.deleted]);
  // Duplicate a row (B): student 7 again, under a new id.
  const duplicate = await students.query(
    `insert into student (tenant_id, id, first_name, last_name, grade, date_of_birth, school_id, gpa, legacy_id, created_at)
     select tenant_id, gen_random_uuid(), first_name, last_name, grade, date_of_birth, school_id, gpa, legacy_id, created_at
       from student where tenant_id = $1 and legacy_id = 7 returning id::text`,
    [b],
  );
  planted.duplicate = duplicate.rows[0].id;
  // Change one value (C): student 21's last name.
  planted.changed = await idOf(students, 'student', c, 21);
  await students.query(`update student set last_name = last_name || 'x' where tenant_id = $1 and id = $2`, [c, planted.changed]);
  // Move a row to another tenant (A → D): school 2 (no foreign key points at it inside its database).
  planted.moved = await idOf(districts, 'school', a, 2);
  await districts.query('update school set tenant_id = $2 where tenant_id = $1 and id = $3', [a, d, planted.moved]);
  // Empty one district's table (D): its rosters.
  await staff.query('delete from section_student where tenant_id = $1', [d]);

  report = await reconcileDistricts({
    source: legacy.source,
    targets: ownerTargets(platform),
    slugs: legacy.districts.map((x) => x.slug),
    jobs: 2,
  });
});
afterAll(async () => {
  await legacy?.drop();
  await platform?.stop();
});

const mismatches = () => report.districts.flatMap((d) => d.tables.filter((t) => !t.match).map((t) => ({ slug: d.slug, table: t })));
const tableOf = (index: number, table: string): TableReport =>
  report.districts.find((d) => d.slug === legacy.districts[index]!.slug)!.tables.find((t) => t.table === table)!;
const refs = (rows: { id: string; legacyId: string | null }[]) => rows.map((r) => `${r.legacyId}:${r.id}`);

describe('reconcile names each planted fault', () => {
  it('finds differences in exactly the planted district × table pairs', () => {
    expect(report.match).toBe(false);
    const slug = (i: number) => legacy.districts[i]!.slug;
    expect(
      mismatches()
        .map((m) => `${m.slug} ${m.table.table}`)
        .sort(),
    ).toEqual(
      [
        `${slug(0)} students.enrollment`,
        `${slug(1)} students.student`,
        `${slug(2)} students.student`,
        `${slug(0)} districts.school`,
        `${slug(3)} districts.school`,
        `${slug(3)} staff.section_student`,
      ].sort(),
    );
  });

  it('a deleted row is missing, by legacy id and target id', () => {
    const table = tableOf(0, 'students.enrollment');
    expect(table.counts).toEqual({ missing: 1, extra: 0, changed: 0, misattributed: 0 });
    expect(refs(table.missing)).toEqual([`12:${planted.deleted}`]);
    expect(table.targetRows).toBe(table.sourceRows - 1);
  });

  it('a duplicated row is extra, under its new id and the legacy id it copies', () => {
    const table = tableOf(1, 'students.student');
    expect(table.counts).toEqual({ missing: 0, extra: 1, changed: 0, misattributed: 0 });
    expect(refs(table.extra)).toEqual([`7:${planted.duplicate}`]);
  });

  it('a changed value is changed, with the same counts on both sides', () => {
    const table = tableOf(2, 'students.student');
    expect(table.counts).toEqual({ missing: 0, extra: 0, changed: 1, misattributed: 0 });
    expect(refs(table.changed)).toEqual([`21:${planted.changed}`]);
    expect(table.targetRows).toBe(table.sourceRows);
    expect(table.targetChecksum).not.toBe(table.sourceChecksum);
  });

  it('a row moved to another tenant is misattributed in its district and extra (belonging elsewhere) in the other', () => {
    const home = tableOf(0, 'districts.school');
    expect(home.counts).toEqual({ missing: 0, extra: 0, changed: 0, misattributed: 1 });
    expect(home.misattributed[0]).toMatchObject({ id: planted.moved, legacyId: '2' });
    expect(home.misattributed[0]!.foundUnder).toContain(legacy.districts[3]!.tenantId);
    const other = tableOf(3, 'districts.school');
    expect(other.counts).toEqual({ missing: 0, extra: 1, changed: 0, misattributed: 0 });
    expect(other.extra[0]).toMatchObject({ id: planted.moved, legacyId: '2', belongsTo: legacy.districts[0]!.slug });
  });

  it('an emptied table lists every source row as missing', async () => {
    const table = tableOf(3, 'staff.section_student');
    const source = await legacy.connect(legacy.districts[3]!.slug);
    const { rows } = await source.query(
      `select section_id || '/' || student_id as legacy from section_rosters order by section_id, student_id`,
    );
    expect(table.targetRows).toBe(0);
    expect(table.counts.missing).toBe(rows.length);
    expect(table.missing.map((m) => m.legacyId).sort()).toEqual(rows.map((r) => r.legacy).sort());
  });

  it('the CLI prints the table and the ids, and exits 1', () => {
    const run = spawnSync(
      process.execPath,
      [
        'tools/consolidation/cli.ts',
        'reconcile',
        '--source',
        legacy.template,
        '--target',
        `${platform.databases.districts!.ownerUrl.replace(/_districts$/, '_{service}')}`,
        '--districts',
        legacy.districts.map((d) => d.slug).join(','),
      ],
      { encoding: 'utf8' },
    );
    expect(run.status).toBe(1);
    expect(run.stdout).toContain(`${legacy.districts[0]!.slug} students.enrollment missing 1: legacy 12 ${planted.deleted}`);
    expect(run.stdout).toContain(`${legacy.districts[1]!.slug} students.student extra 1: legacy 7 ${planted.duplicate}`);
    expect(run.stdout).toContain('MISMATCH');
    expect(run.stdout).not.toMatch(/password|at .*\.ts:\d+/);
  });
});
