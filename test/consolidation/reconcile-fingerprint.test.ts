/**
 * The row fingerprint sees what a sum of per-column hashes would not: two values swapped between rows, a
 * timestamp one microsecond off, a NULL that became a value and a numeric one hundredth off; each is named.
 */
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
const swapped: string[] = [];
const changed: Record<string, string> = {};

const one = async <T extends pg.QueryResultRow>(client: pg.Client, sql: string, values: unknown[]) => {
  const { rows } = await client.query<T>(sql, values);
  expect(rows).toHaveLength(1);
  return rows[0]!;
};

beforeAll(async () => {
  platform = await startTestPlatform();
  legacy = await createLegacyDistricts(platform.adminUrl, 2, 60);
  await consolidate({ source: legacy.source, targets: ownerTargets(platform), districts: 'all', jobs: 2, statusTtlMs: 0 });
  students = await platform.connect(platform.databases.students!.ownerUrl);
  const [a, b] = legacy.districts.map((x) => x.tenantId) as [string, string];

  // A: student 5's last name and that of the first student with another one, swapped.
  const first = await one<{ id: string; last_name: string }>(
    students,
    `select id::text, last_name from student where tenant_id = $1 and legacy_id = 5`,
    [a],
  );
  const second = await one<{ id: string; last_name: string }>(
    students,
    `select id::text, last_name from student where tenant_id = $1 and last_name <> $2 order by legacy_id limit 1`,
    [a, first.last_name],
  );
  await students.query(`update student set last_name = $3 where tenant_id = $1 and id = $2`, [a, first.id, second.last_name]);
  await students.query(`update student set last_name = $3 where tenant_id = $1 and id = $2`, [a, second.id, first.last_name]);
  swapped.push(first.id, second.id);

  // B: a timestamp one microsecond later, a numeric one hundredth up, an open enrollment given an end date.
  changed.createdAt = (
    await one<{ id: string }>(
      students,
      `update student set created_at = created_at + interval '1 microsecond' where tenant_id = $1 and legacy_id = 3 returning id::text`,
      [b],
    )
  ).id;
  changed.gpa = (
    await one<{ id: string }>(
      students,
      `update student set gpa = gpa + 0.01 where tenant_id = $1 and id = (select id from student where tenant_id = $1 and gpa < 4 order by legacy_id offset 10 limit 1) returning id::text`,
      [b],
    )
  ).id;
  changed.endDate = (
    await one<{ id: string }>(
      students,
      `update enrollment set end_date = start_date + 1 where tenant_id = $1 and id = (select id from enrollment where tenant_id = $1 and end_date is null order by legacy_id limit 1) returning id::text`,
      [b],
    )
  ).id;

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

const tableOf = (index: number, table: string): TableReport =>
  report.districts.find((d) => d.slug === legacy.districts[index]!.slug)!.tables.find((t) => t.table === table)!;

describe('reconcile row fingerprints', () => {
  it('differences only where planted', () => {
    expect(report.districts.flatMap((d) => d.tables.filter((t) => !t.match).map((t) => `${d.slug} ${t.table}`)).sort()).toEqual(
      [
        `${legacy.districts[0]!.slug} students.student`,
        `${legacy.districts[1]!.slug} students.student`,
        `${legacy.districts[1]!.slug} students.enrollment`,
      ].sort(),
    );
  });

  it('a value swapped between two rows changes both, with the same counts', () => {
    const table = tableOf(0, 'students.student');
    expect(table.counts).toEqual({ missing: 0, extra: 0, changed: 2, misattributed: 0 });
    expect(table.changed.map((r) => r.id).sort()).toEqual([...swapped].sort());
    expect(table.targetRows).toBe(table.sourceRows);
  });

  it('a microsecond, a hundredth and a NULL that became a date are each a changed row', () => {
    const student = tableOf(1, 'students.student');
    expect(student.counts).toEqual({ missing: 0, extra: 0, changed: 2, misattributed: 0 });
    expect(student.changed.map((r) => r.id).sort()).toEqual([changed.createdAt, changed.gpa].sort());
    const enrollment = tableOf(1, 'students.enrollment');
    expect(enrollment.counts).toEqual({ missing: 0, extra: 0, changed: 1, misattributed: 0 });
    expect(enrollment.changed.map((r) => r.id)).toEqual([changed.endDate]);
  });
});
