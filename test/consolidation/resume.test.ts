/** Consolidation killed mid-run (an abort after N rows, then a hard SIGKILL mid-COPY) resumes to a clean, duplicate-free result. */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consolidate } from '../../tools/consolidation/consolidate.ts';
import { reconcileDistricts } from '../../tools/consolidation/reconcile.ts';
import { SERVICES, TABLES } from '../../tools/consolidation/tables.ts';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { createLegacyDistricts, ownerTargets, type LegacyFixture } from './legacy.ts';
import { waitFor } from '../support/wait.ts';

let platform: TestPlatform;
let legacy: LegacyFixture;

beforeAll(async () => {
  platform = await startTestPlatform({ districtStatusTtlMs: 0 });
  legacy = await createLegacyDistricts(platform.adminUrl, 3, 150);
});
afterAll(async () => {
  await legacy?.drop();
  await platform?.stop();
});

const options = (districts: string[]) => ({ source: legacy.source, targets: ownerTargets(platform), districts, jobs: 1, statusTtlMs: 0 });

async function checkpoints(tenantId: string): Promise<string[]> {
  const finished: string[] = [];
  for (const service of SERVICES) {
    const client = await platform.connect(platform.databases[service]!.ownerUrl);
    const { rows } = await client.query('select table_name from consolidation.checkpoint where district_id = $1', [tenantId]);
    finished.push(...rows.map((r) => `${service}.${r.table_name}`));
  }
  return finished.sort();
}

/** Rows per table of a district in the target, and whether any (tenant, id) or roster pair appears twice. */
async function targetCounts(tenantId: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const table of TABLES) {
    const client = await platform.connect(platform.databases[table.service]!.ownerUrl);
    const { rows } = await client.query(
      `select count(*)::int as n, count(distinct (${table.key.join(', ')}))::int as distinct_keys from public.${table.target} where tenant_id = $1`,
      [tenantId],
    );
    expect(rows[0].distinct_keys).toBe(rows[0].n);
    counts[table.legacy] = rows[0].n;
  }
  return counts;
}

async function sourceCounts(slug: string): Promise<Record<string, number>> {
  const client = await legacy.connect(slug);
  const counts: Record<string, number> = {};
  for (const table of TABLES) counts[table.legacy] = Number((await client.query(`select count(*) from ${table.legacy}`)).rows[0].count);
  return counts;
}

async function reconcileClean(slug: string) {
  const report = await reconcileDistricts({ source: legacy.source, targets: ownerTargets(platform), slugs: [slug], jobs: 1 });
  expect(report.match).toBe(true);
}

describe('resumable consolidation', () => {
  it('an abort after N rows leaves the district migrating and refused by the gateway, with finished pairs checkpointed; a rerun completes it', async () => {
    const district = legacy.districts[0]!;
    // The first tables hold 3 + 150 + 180 rows: the abort falls inside the enrollments COPY.
    await expect(consolidate({ ...options([district.slug]), abortAfterRows: 200 })).rejects.toThrow(/aborted after \d+ rows/);
    expect(await checkpoints(district.tenantId)).toEqual(['districts.school', 'students.student']);
    const partial = await targetCounts(district.tenantId);
    expect(partial.enrollments).toBe(0); // the aborted pair rolled back as a whole
    const refused = await platform.as(district.tenantId, '{ students(first: 1) { edges { node { id } } } }');
    expect(refused.status).toBe(403);
    expect(refused.body.errors?.[0]?.message).toBe('district is being migrated, try again later');

    const rerun = await consolidate(options([district.slug]));
    expect(rerun.districts[0]!.skipped).toEqual(['districts.school', 'students.student']);
    expect(rerun.districts[0]!.copied.map((c) => c.table)).toEqual([
      'students.enrollment',
      'staff.staff_member',
      'staff.section',
      'staff.section_student',
    ]);
    expect(await targetCounts(district.tenantId)).toEqual(await sourceCounts(district.slug));
    await reconcileClean(district.slug);
    expect((await platform.as(district.tenantId, '{ district { status } }')).body.data.district.status).toBe('ACTIVE');
  });

  it('a hard kill (SIGKILL) in the middle of a COPY leaves no rows of the interrupted pair; the rerun leaves no duplicates', async () => {
    const district = legacy.districts[1]!;
    const target = `${platform.databases.districts!.ownerUrl.replace(/_districts$/, '_{service}')}`;
    // Hangs inside the enrollments COPY (after school and students are committed) until killed.
    const child = spawn(
      process.execPath,
      [
        'tools/consolidation/cli.ts',
        'consolidate',
        '--source',
        legacy.template,
        '--target',
        target,
        '--districts',
        district.slug,
        '--status-ttl-ms',
        '0',
        '--stall-after-rows',
        '200',
      ],
      { stdio: 'ignore' },
    );
    const students = await platform.connect(platform.databases.students!.ownerUrl);
    const copies = async (state: string) =>
      (
        await students.query(
          `select count(*)::int as n from pg_stat_activity where datname = current_database() and query like 'copy public.enrollment%' and state like $1`,
          [state],
        )
      ).rows[0].n as number;
    await waitFor('the consolidation to reach the enrollments COPY', async () => (await copies('active')) > 0, { timeoutMs: 30_000 });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    // The server notices the dead client and rolls its transaction back; wait for that backend to go.
    await waitFor('the killed COPY backend to end', async () => (await copies('%')) === 0, { timeoutMs: 30_000 });
    expect(await checkpoints(district.tenantId)).toEqual(['districts.school', 'students.student']);
    expect((await targetCounts(district.tenantId)).enrollments).toBe(0);

    await consolidate(options([district.slug]));
    expect(await targetCounts(district.tenantId)).toEqual(await sourceCounts(district.slug));
    await reconcileClean(district.slug);
  });
});
