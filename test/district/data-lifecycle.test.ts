/**
 * `district export`, `offboard` and `restore` as the operator runs them: the CLI as a child process against a
 * real platform's databases. Export → verify (and a tampered file caught by name); offboard refused for an
 * active district and without an export; offboard SIGKILLed while it deletes (held at a lock the test owns),
 * then rerun to completion with its proof and tombstone; restore over existing rows refused with nothing
 * changed; and the round trip export → offboard → restore giving back the manifest's counts and checksums with
 * every other district unchanged and the policy linter clean.
 */
import { spawn } from 'node:child_process';
import { appendFile, cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discoverDistrictTables, everyDistrictFigures, type DistrictTable } from '../../tools/district/export-catalog.ts';
import { readManifest } from '../../tools/district/export.ts';
import { lintDatabase } from '../../tools/policy-lint/lint.ts';
import { demo, startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { waitFor } from '../support/wait.ts';

const north = demo('north-valley');
const south = demo('south-ridge');

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe('district export, offboard and restore', () => {
  let platform: TestPlatform;
  let folder: string;
  const owners: Record<string, pg.Client> = {};
  let tables: DistrictTable[] = [];

  const env = () => ({
    ...process.env,
    DATABASE_URL: platform.config.databaseUrl,
    DATA_DIR: platform.config.dataDir,
    DB_PREFIX: platform.config.prefix,
  });
  const start = (args: string[]) => spawn(process.execPath, ['tools/district/cli.ts', ...args], { env: env(), stdio: 'pipe' });
  const cli = (...args: string[]) =>
    new Promise<CliResult>((resolve, reject) => {
      const child = start(args);
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk) => (stdout += chunk));
      child.stderr.on('data', (chunk) => (stderr += chunk));
      child.once('error', reject);
      child.once('close', (code) => resolve({ code, stdout, stderr }));
    });

  /** Every district's row count and checksum in every tenant table: `service.table` → tenant → figures. */
  const figures = async () => {
    const all: Record<string, Record<string, { rows: number; checksum: string }>> = {};
    for (const table of tables)
      all[`${table.service}.${table.name}`] = Object.fromEntries(await everyDistrictFigures(owners[table.service]!, table));
    return all;
  };
  const without = (all: Awaited<ReturnType<typeof figures>>, tenantId: string) =>
    Object.fromEntries(Object.entries(all).map(([table, byTenant]) => [table, { ...byTenant, [tenantId]: undefined }]));
  const districtRows = async (tenantId: string) =>
    Object.fromEntries(Object.entries(await figures()).map(([table, byTenant]) => [table, byTenant[tenantId]?.rows ?? 0]));
  const setStatus = (tenantId: string, status: string) =>
    owners.districts!.query('update district set status = $2 where tenant_id = $1', [tenantId, status]);
  const directoryRow = async (tenantId: string) =>
    (await owners.districts!.query('select name, slug, status from district where tenant_id = $1', [tenantId])).rows[0];

  beforeAll(async () => {
    platform = await startTestPlatform();
    folder = await mkdtemp(join(tmpdir(), 'k12-district-data-'));
    for (const [service, database] of Object.entries(platform.databases)) {
      owners[service] = await platform.connect(database.ownerUrl);
      tables.push(...(await discoverDistrictTables(owners[service], service)));
    }
    tables = tables.sort((a, b) => `${a.service}.${a.name}`.localeCompare(`${b.service}.${b.name}`));
  });
  afterAll(async () => {
    await platform?.stop();
    if (folder) await rm(folder, { recursive: true, force: true });
  });

  it("exports every row of an active district with the database's counts; verify passes, and names a tampered table", async () => {
    const out = join(folder, 'north');
    const exported = await cli('export', north.slug, '--out', out, '--json');
    expect(exported.stderr).toBe('');
    expect(exported.code).toBe(0);
    const manifest = await readManifest(out);
    const now = await figures();
    expect(Object.fromEntries(manifest.tables.map((t) => [`${t.service}.${t.table}`, { rows: t.rows, checksum: t.checksum }]))).toEqual(
      Object.fromEntries(Object.entries(now).map(([table, byTenant]) => [table, byTenant[north.tenantId] ?? { rows: 0, checksum: '0' }])),
    );
    expect(manifest.tables.find((t) => t.table === 'student')!.rows).toBeGreaterThan(0);
    expect(JSON.parse(exported.stdout).rows).toBe(manifest.tables.reduce((sum, t) => sum + t.rows, 0));

    const verified = await cli('export', '--verify', out);
    expect(verified.code).toBe(0);

    const tampered = join(folder, 'north-tampered');
    await cp(out, tampered, { recursive: true });
    await appendFile(
      join(tampered, 'students.student.csv'),
      `${north.tenantId},00000000-0000-4000-8000-000000000000,A,B,1,2015-01-01,,2026-01-01 00:00:00+00,,\n`,
    );
    const caught = await cli('export', '--verify', tampered);
    expect(caught.code).toBe(1);
    expect(caught.stdout).toMatch(/^students\.student: \d+ rows in students\.student\.csv, manifest says/m);
    expect(caught.stdout).toMatch(/^students\.student: sha256 of students\.student\.csv is/m);
  });

  it('refuses to offboard an active district, and a suspended one without an export; nothing changes', async () => {
    const before = await figures();
    const northRows = await districtRows(north.tenantId);
    const active = await cli('offboard', north.slug, '--export', join(folder, 'north'));
    expect(active).toMatchObject({ code: 2, stderr: `district: district ${north.slug} is active: suspend it first\n` });
    await setStatus(north.tenantId, 'suspended');
    const noExport = await cli('offboard', north.slug);
    expect(noExport.code).toBe(2);
    expect(noExport.stderr).toMatch(/--no-export/);
    const otherExport = join(folder, 'south');
    expect((await cli('export', south.slug, '--out', otherExport)).code).toBe(0);
    const wrongExport = await cli('offboard', north.slug, '--export', otherExport);
    expect(wrongExport).toMatchObject({
      code: 2,
      stderr: `district: ${otherExport} is an export of ${south.slug}, not of ${north.slug}\n`,
    });
    expect(await districtRows(north.tenantId)).toEqual(northRows);
    expect(without(await figures(), north.tenantId)).toEqual(without(before, north.tenantId));
  });

  it('offboard killed while deleting: the rerun finishes, proves 0 rows and other districts unchanged, and leaves a tombstone', async () => {
    const before = await figures();
    const studentsBefore = before['students.student']![north.tenantId]!.rows;
    expect(studentsBefore).toBeGreaterThan(0);
    // Holds the offboard at the student table (after enrollment, its child, is emptied) until it is killed.
    const blocker = await platform.connect(platform.databases.students!.ownerUrl);
    await blocker.query('begin');
    await blocker.query('lock table student in share mode');
    const child = start(['offboard', north.tenantId, '--export', join(folder, 'north')]);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    await waitFor(
      'the offboard to wait on the student table after emptying enrollment and the staff tables',
      async () => {
        const { rows } = await owners.students!.query<{ n: number }>(
          `select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and query like 'delete from public."student"%'`,
        );
        return rows[0]!.n > 0;
      },
      { timeoutMs: 30_000 },
    );
    const partial = await districtRows(north.tenantId);
    expect(partial['students.enrollment']).toBe(0);
    expect(partial['staff.section_student']).toBe(0);
    expect(partial['students.student']).toBe(studentsBefore);
    child.kill('SIGKILL');
    await exited;
    await blocker.query('rollback');

    const rerun = await cli('offboard', north.tenantId, '--export', join(folder, 'north'), '--json');
    expect(rerun.stderr).toBe('');
    expect(rerun.code).toBe(0);
    // The killed CLI's last DELETE may still commit once the lock is released (its backend runs on): either way the rerun ends it.
    expect(JSON.parse(rerun.stdout)).toMatchObject({ tables: tables.length, otherDistricts: 2 });
    const after = await districtRows(north.tenantId);
    expect(after).toEqual(Object.fromEntries(Object.keys(after).map((table) => [table, table === 'districts.district' ? 1 : 0])));
    expect(await directoryRow(north.tenantId)).toEqual({ name: '', slug: `offboarded-${north.tenantId}`, status: 'suspended' });
    expect(without(await figures(), north.tenantId)).toEqual(without(before, north.tenantId));
  });

  it('refuses to restore over existing rows without --replace, changing nothing', async () => {
    await setStatus(south.tenantId, 'suspended');
    const before = await figures();
    const refused = await cli('restore', south.slug, '--from', join(folder, 'south'));
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/^district: district south-ridge holds rows \(.*\): restore --replace deletes them first\n$/);
    expect(await figures()).toEqual(before);

    const replaced = await cli('restore', south.slug, '--from', join(folder, 'south'), '--replace', '--json');
    expect(replaced.stderr).toBe('');
    expect(replaced.code).toBe(0);
    expect(await figures()).toEqual(before);
  });

  it('round trip: restoring the offboarded district gives back the manifest, other districts unchanged, the linter clean', async () => {
    const manifest = await readManifest(join(folder, 'north'));
    const before = await figures();
    const restored = await cli('restore', north.tenantId, '--from', join(folder, 'north'), '--json');
    expect(restored.stderr).toBe('');
    expect(restored.code).toBe(0);
    const after = await figures();
    for (const entry of manifest.tables) {
      const got = after[`${entry.service}.${entry.table}`]![north.tenantId] ?? { rows: 0, checksum: '0' };
      // The directory row comes back suspended (the export was of the active district): every other table is exact.
      if (entry.table === 'district') expect(got.rows).toBe(1);
      else expect({ table: entry.table, ...got }).toEqual({ table: entry.table, rows: entry.rows, checksum: entry.checksum });
    }
    expect(await directoryRow(north.tenantId)).toEqual({ name: north.name, slug: north.slug, status: 'suspended' });
    expect(without(after, north.tenantId)).toEqual(without(before, north.tenantId));
    for (const [service, database] of Object.entries(platform.databases))
      expect({ service, findings: await lintDatabase(owners[service]!, { appRoles: [database.appRole] }) }).toEqual({
        service,
        findings: [],
      });
  });

  it('restore killed while loading: each database is whole or untouched, and a rerun with --replace finishes', async () => {
    const east = demo('east-lake');
    const out = join(folder, 'east');
    expect((await cli('export', east.slug, '--out', out)).code).toBe(0);
    await setStatus(east.tenantId, 'suspended');
    expect((await cli('offboard', east.tenantId, '--export', out)).code).toBe(0);
    const manifest = await readManifest(out);
    const before = await figures();
    // Holds the restore inside the students database's transaction (the directory's has committed) until it is killed.
    const blocker = await platform.connect(platform.databases.students!.ownerUrl);
    await blocker.query('begin');
    await blocker.query('lock table student in share mode');
    const child = start(['restore', east.tenantId, '--from', out]);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    await waitFor(
      'the restore to wait on the student table',
      async () => {
        const { rows } = await owners.students!.query<{ n: number }>(
          `select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and query like 'insert into public."student"%'`,
        );
        return rows[0]!.n > 0;
      },
      { timeoutMs: 30_000 },
    );
    child.kill('SIGKILL');
    await exited;
    await blocker.query('rollback');
    // The killed transaction never commits: the students and staff databases hold none of the district's rows.
    await waitFor('the killed restore to end on the server', async () => {
      const { rows } = await owners.students!.query<{ n: number }>(
        `select count(*)::int as n from pg_stat_activity where datname = current_database() and query like 'insert into public.%' and pid <> pg_backend_pid()`,
      );
      return rows[0]!.n === 0;
    });
    const partial = await districtRows(east.tenantId);
    expect(partial['students.student']).toBe(0);
    expect(partial['staff.section_student']).toBe(0);
    expect(partial['districts.school']).toBe(manifest.tables.find((t) => t.table === 'school')!.rows);

    const refused = await cli('restore', east.tenantId, '--from', out);
    expect(refused.code).toBe(2);
    const rerun = await cli('restore', east.tenantId, '--from', out, '--replace');
    expect(rerun.stderr).toBe('');
    expect(rerun.code).toBe(0);
    const after = await figures();
    for (const entry of manifest.tables.filter((t) => t.table !== 'district'))
      expect({ table: entry.table, ...(after[`${entry.service}.${entry.table}`]![east.tenantId] ?? { rows: 0, checksum: '0' }) }).toEqual({
        table: entry.table,
        rows: entry.rows,
        checksum: entry.checksum,
      });
    expect(without(after, east.tenantId)).toEqual(without(before, east.tenantId));
  });
  it('the audit trail outlives offboarding: export, offboard and restore each left an event; a tombstone cannot be resumed', async () => {
    const actions = async (tenantId: string) =>
      (
        await owners.districts!.query<{ action: string }>('select action from district_event where tenant_id = $1 order by at, id', [
          tenantId,
        ])
      ).rows.map((row) => row.action);
    expect(await actions(north.tenantId)).toEqual(expect.arrayContaining(['export', 'offboard', 'restore']));
    await setStatus(south.tenantId, 'suspended');
    const before = await actions(south.tenantId);
    expect((await cli('offboard', south.tenantId, '--no-export')).code).toBe(0);
    expect(await actions(south.tenantId)).toEqual([...before, 'offboard']);
    const resumed = await cli('resume', south.tenantId);
    expect(resumed.code).toBe(2);
    expect(resumed.stderr).toContain('was offboarded');
    expect((await directoryRow(south.tenantId)).status).toBe('suspended');
  });
});
