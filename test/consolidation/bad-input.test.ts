/** Each bad input is refused with its own clear error, and the target is left exactly as it was. */
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consolidate, type ConsolidateOptions } from '../../tools/consolidation/consolidate.ts';
import { SERVICES, type Service } from '../../tools/consolidation/tables.ts';
import { registerDistrict } from '../../tools/onboarding.ts';
import { escapeIdentifier } from 'pg';
import { SourceTemplate } from '../../tools/legacy/source-url.ts';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { createLegacyDistricts, ownerTargets, targetFingerprint, type LegacyFixture } from './legacy.ts';

let platform: TestPlatform;
let legacy: LegacyFixture;
let slugs: string[];

beforeAll(async () => {
  platform = await startTestPlatform();
  legacy = await createLegacyDistricts(platform.adminUrl, 5, 30);
  slugs = legacy.districts.map((d) => d.slug);
  const missingColumn = await legacy.connect(slugs[1]!);
  await missingColumn.query('alter table students drop column gpa');
  const wrongType = await legacy.connect(slugs[2]!);
  await wrongType.query('alter table students alter column grade type integer');
});
afterAll(async () => {
  await legacy?.drop();
  await platform?.stop();
});

const run = (overrides: Partial<ConsolidateOptions>) =>
  consolidate({ source: legacy.source, targets: ownerTargets(platform), districts: [slugs[0]!], jobs: 2, statusTtlMs: 0, ...overrides });

/** Runs a consolidation that must fail with `message`, and checks that it changed nothing in the target. */
async function refused(overrides: Partial<ConsolidateOptions>, message: RegExp) {
  const before = await targetFingerprint(platform);
  await expect(run(overrides)).rejects.toThrow(message);
  expect(await targetFingerprint(platform)).toEqual(before);
}

describe('bad input', () => {
  it('an unreachable source', async () => {
    const unreachable = new SourceTemplate(legacy.template.replace(/\/\/([^@/]*@)?[^/]+\//, '//$1127.0.0.1:1/'));
    await refused({ source: unreachable }, /cannot connect to legacy database .*district_/);
  });

  it('a legacy schema with a missing column, or a column of another type — even next to a good district', async () => {
    await refused({ districts: [slugs[1]!] }, /does not match the legacy schema: students\.gpa is missing/);
    await refused({ districts: [slugs[2]!] }, /students\.grade is integer, expected smallint/);
    await refused({ districts: [slugs[0]!, slugs[1]!] }, /students\.gpa is missing/);
  });

  it('a target that is not migrated', async () => {
    const prefix = `t${randomBytes(4).toString('hex')}_bare`;
    const admin = await platform.connect(platform.adminUrl);
    const bare = {} as Record<Service, string>;
    for (const service of SERVICES) {
      await admin.query(`create database ${escapeIdentifier(`${prefix}_${service}`)}`);
      const url = new URL(platform.adminUrl);
      url.pathname = `/${prefix}_${service}`;
      bare[service] = url.toString();
    }
    try {
      await refused({ targets: bare }, /target t\w+_bare_districts is not migrated \(run npm run migrate\): table school is missing/);
    } finally {
      for (const service of SERVICES) await admin.query(`drop database if exists ${escapeIdentifier(`${prefix}_${service}`)} with (force)`);
    }
  });

  it('a target role that does not bypass row-level security', async () => {
    const appTargets = Object.fromEntries(SERVICES.map((s) => [s, platform.databases[s]!.appUrl])) as Record<Service, string>;
    await refused({ targets: appTargets }, /does not bypass row-level security/);
  });

  it('a district registered under another name', async () => {
    const districts = await platform.connect(platform.databases.districts!.ownerUrl);
    const district = legacy.districts[3]!;
    await registerDistrict(districts, { tenantId: district.tenantId, slug: district.slug, name: 'Someone Else' }, 'active');
    await refused({ districts: [district.slug] }, /already registered as ".*" \(Someone Else\)/);
  });

  it('a district already present with different data: rows the consolidation did not write, or a source changed since', async () => {
    const district = legacy.districts[4]!;
    const schools = await platform.connect(platform.databases.districts!.ownerUrl);
    await schools.query(`insert into school (tenant_id, name) values ($1, 'Planted before consolidation')`, [district.tenantId]);
    await refused(
      { districts: [district.slug] },
      new RegExp(
        `district ${district.slug} is already present in the target with different data \\(districts.school: 3 missing, 1 extra; students.student: 30 missing`,
      ),
    );
    await schools.query(`delete from school where tenant_id = $1`, [district.tenantId]);

    await run({ districts: [district.slug] });
    const source = await legacy.connect(district.slug);
    await source.query(`update students set first_name = 'Changed' where id = 3`);
    await refused({ districts: [district.slug] }, /already present in the target with different data \(students.student: 1 changed\)/);
  });

  it('the CLI: a one-line error, no stack trace, no password, exit 2; --dry-run prints the plan and writes nothing', async () => {
    const fingerprint = await targetFingerprint(platform);
    const target = platform.databases.districts!.ownerUrl.replace(/_districts$/, '_{service}');
    const before = spawnSync(
      process.execPath,
      ['tools/consolidation/cli.ts', 'consolidate', '--source', legacy.template, '--target', target, '--districts', slugs[1]!],
      { encoding: 'utf8' },
    );
    expect(before.status).toBe(2);
    expect(before.stderr.trim().split('\n')).toHaveLength(1);
    expect(before.stderr).toMatch(/^consolidate: legacy database .* students\.gpa is missing/);
    const password = new URL(platform.databases.districts!.ownerUrl).password;
    const unreachable = spawnSync(
      process.execPath,
      [
        'tools/consolidation/cli.ts',
        'consolidate',
        '--source',
        legacy.template,
        '--target',
        target.replace(/:\d+\//, ':1/'),
        '--districts',
        slugs[0]!,
      ],
      { encoding: 'utf8' },
    );
    expect(unreachable.status).toBe(2);
    expect(unreachable.stderr).toMatch(/cannot connect to the districts service database/);
    if (password) expect(unreachable.stderr).not.toContain(password);

    const dry = spawnSync(
      process.execPath,
      ['tools/consolidation/cli.ts', 'consolidate', '--dry-run', '--source', legacy.template, '--target', target, '--districts', slugs[0]!],
      { encoding: 'utf8' },
    );
    expect(dry.status).toBe(0);
    expect(dry.stdout).toMatch(new RegExp(`${slugs[0]} .*: new`));
    expect(dry.stdout).toMatch(/students\.student\s+30 rows/);
    expect(dry.stdout).toContain('nothing written (dry run)');
    expect(await targetFingerprint(platform)).toEqual(fingerprint);
  });
});
