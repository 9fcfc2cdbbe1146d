/** `npm run district`: create, list, show, suspend, resume, run as a child process against a real test platform. */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DISTRICT_STATUS_CHANNEL } from '../tenancy/district-status-events.ts';
import { recordDistrictEvent } from '../tools/district/audit.ts';
import { districtIdFromSlug } from '../tools/district/lifecycle-commands.ts';
import { demo, startTestPlatform, type TestPlatform } from './support/platform.ts';
import { waitFor } from './support/wait.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const REDIS_URL = 'redis://127.0.0.1:6379';

let platform: TestPlatform;
let directory: pg.Client;
let scratch: string;
beforeAll(async () => {
  platform = await startTestPlatform({ districtStatusTtlMs: 0 });
  directory = await platform.connect(platform.databases.districts!.ownerUrl);
  scratch = await mkdtemp(join(tmpdir(), 'k12-district-cli-'));
});
afterAll(async () => {
  await platform?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The CLI as an operator runs it, on the test platform's databases. */
function district(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const { REDIS_URL: _inherited, ...inherited } = process.env;
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['tools/district/cli.ts', ...args],
      {
        cwd: ROOT,
        env: {
          ...inherited,
          DATABASE_URL: platform.adminUrl,
          DB_PREFIX: platform.config.prefix,
          DATA_DIR: platform.config.dataDir,
          LOG_LEVEL: 'warn',
          // As the platform's gateway, so the CLI states its propagation time.
          DISTRICT_STATUS_TTL_MS: String(platform.config.districtStatusTtlMs),
          ...env,
        },
      },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
    );
  });
}

const csv = async (name: string, text: string) => {
  const file = join(scratch, name);
  await writeFile(file, text);
  return file;
};
const districtCount = async () => Number((await directory.query('select count(*) from district')).rows[0].count);
const eventCount = async () => Number((await directory.query('select count(*) from district_event')).rows[0].count);
const eventsOf = async (tenantId: string) =>
  (await directory.query('select action, actor, details from district_event where tenant_id = $1 order by at, action', [tenantId])).rows;

describe('district create', () => {
  it('registers one district with a slug-derived id and records who did it', async () => {
    const run = await district(['create', '--slug', 'pine-hill', '--name', 'Pine Hill', '--actor', 'ops-alice', '--json']);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    const tenantId = districtIdFromSlug('pine-hill');
    expect(JSON.parse(run.stdout)).toMatchObject({
      created: ['pine-hill'],
      unchanged: [],
      districts: [{ tenantId, slug: 'pine-hill', name: 'Pine Hill' }],
    });
    expect((await directory.query('select slug, name, status from district where tenant_id = $1', [tenantId])).rows).toEqual([
      { slug: 'pine-hill', name: 'Pine Hill', status: 'active' },
    ]);
    expect(await eventsOf(tenantId)).toEqual([{ action: 'create', actor: 'ops-alice', details: { slug: 'pine-hill', name: 'Pine Hill' } }]);
  });

  it('registers every district of a CSV file; a rerun changes nothing and says so', async () => {
    const id = '0b7f5d2e-1c3a-4e6b-8d9f-a1b2c3d4e5f6';
    const file = await csv('many.csv', `slug,name,id\ncedar-${1},Cedar 1,\ncedar-2,"Cedar 2, East",${id}\ncedar-3,Cedar 3,\n`);
    const first = await district(['create', '--from-file', file, '--json']);
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ created: ['cedar-1', 'cedar-2', 'cedar-3'], unchanged: [] });
    expect((await directory.query('select name from district where tenant_id = $1', [id])).rows).toEqual([{ name: 'Cedar 2, East' }]);
    const [districts, events] = [await districtCount(), await eventCount()];

    const rerun = await district(['create', '--from-file', file]);
    expect(rerun).toMatchObject({ code: 0, stdout: 'nothing to do: all 3 district(s) already registered\n' });
    expect([await districtCount(), await eventCount()]).toEqual([districts, events]);
  });

  it('a CSV with bad rows is refused with every bad line named (exit 2), and nothing is written', async () => {
    const file = await csv(
      'bad.csv',
      'slug,name,id\nfine-one,Fine One,\nNot A Slug,Bad,\nfine-two,,\nfine-three,Three,not-a-uuid\nfine-one,Again,\n',
    );
    const [districts, events] = [await districtCount(), await eventCount()];
    const run = await district(['create', '--from-file', file]);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr.trim().split('\n')).toEqual([
      'district: refused: 4 bad row(s), nothing written:',
      `${file}:3: slug "Not A Slug" must be 1-100 of a-z, 0-9 and -`,
      `${file}:4: name must be 1-200 characters`,
      `${file}:5: id "not-a-uuid" is not a UUID`,
      `${file}:6: slug fine-one repeats line 2`,
    ]);
    expect([await districtCount(), await eventCount()]).toEqual([districts, events]);
  });

  it('a registration conflicting with the directory (same id, other name; a taken slug) is refused and nothing is written', async () => {
    const [districts, events] = [await districtCount(), await eventCount()];
    const sameId = await district(['create', '--slug', 'pine-hill', '--name', 'Someone Else']);
    expect(sameId.code).toBe(2);
    expect(sameId.stderr).toContain(`${districtIdFromSlug('pine-hill')} is already registered as "pine-hill" (Pine Hill)`);

    const north = demo('north-valley');
    const file = await csv('conflict.csv', `slug,name,id\nbirch-1,Birch 1,\n${north.slug},Taken,0b7f5d2e-1c3a-4e6b-8d9f-000000000001\n`);
    const takenSlug = await district(['create', '--from-file', file]);
    expect(takenSlug.code).toBe(2);
    expect(takenSlug.stderr).toContain(`${file}:3: slug ${north.slug} already belongs to district ${north.tenantId}`);
    expect([await districtCount(), await eventCount()]).toEqual([districts, events]);
  });
});

describe('district list and show', () => {
  it('list --json gives slug, id, name and status of every district, filtered by --status', async () => {
    const all = await district(['list', '--json']);
    expect(all.code).toBe(0);
    const listed = JSON.parse(all.stdout) as { tenantId: string; slug: string; name: string; status: string; createdAt: string }[];
    expect(listed).toHaveLength(await districtCount());
    expect(listed).toContainEqual({ ...demo('north-valley'), status: 'active', createdAt: expect.any(String) });
    expect(Object.keys(listed[0]!).sort()).toEqual(['createdAt', 'name', 'slug', 'status', 'tenantId']);

    const suspended = await district(['list', '--status', 'suspended', '--json']);
    expect(suspended.code).toBe(0);
    const expected = (await directory.query("select tenant_id from district where status = 'suspended' order by slug")).rows;
    expect((JSON.parse(suspended.stdout) as { tenantId: string }[]).map((d) => d.tenantId)).toEqual(expected.map((row) => row.tenant_id));

    expect(await district(['list', '--status', 'gone'])).toMatchObject({
      code: 2,
      stderr: 'district: refused: --status must be one of active, suspended, migrating\n',
    });
  });

  it("show --json gives the district, its row counts in every service's tenant tables and its events", async () => {
    const north = demo('north-valley');
    // The demo seed writes no audit event (only the CLI does, as the owner): one as `district create` records it.
    await recordDistrictEvent(directory, north.tenantId, 'create', { slug: north.slug }, 'demo');
    const run = await district(['show', north.slug, '--json']);
    expect(run.code).toBe(0);
    const shown = JSON.parse(run.stdout);
    expect(shown).toMatchObject({ tenantId: north.tenantId, slug: north.slug, status: 'active' });
    expect(Object.keys(shown.rows).sort()).toEqual(Object.keys(platform.databases).sort());
    for (const [service, table] of [
      ['districts', 'school'],
      ['students', 'student'],
    ] as const) {
      const owner = await platform.connect(platform.databases[service]!.ownerUrl);
      const { rows } = await owner.query(`select count(*) from ${table} where tenant_id = $1`, [north.tenantId]);
      expect(shown.rows[service][table]).toBe(Number(rows[0].count));
      expect(shown.rows[service][table]).toBeGreaterThan(0);
    }
    expect(shown.events[0]).toMatchObject({ action: 'create', actor: 'demo' });
    expect(await district(['show', 'no-such-district'])).toMatchObject({
      code: 2,
      stderr: 'district: refused: no district no-such-district\n',
    });
  });
});

describe('district suspend and resume', () => {
  const STUDENTS = '{ students(first: 1) { edges { node { id } } } }';

  it('suspend makes the gateway refuse the district with 403 FORBIDDEN; resume serves it again; both are audited', async () => {
    const east = demo('east-lake');
    expect((await platform.as(east.slug, STUDENTS)).status).toBe(200);

    const suspend = await district(['suspend', east.slug, '--actor', 'ops-bob']);
    expect(suspend).toMatchObject({
      code: 0,
      stdout: `${east.slug}: active -> suspended; no REDIS_URL: gateways notice within 0 ms (2 × DISTRICT_STATUS_TTL_MS)\n`,
    });
    const refused = await platform.as(east.slug, STUDENTS);
    expect(refused.status).toBe(403);
    expect(refused.body).toEqual({ errors: [{ message: 'district is suspended', extensions: { code: 'FORBIDDEN' } }] });

    expect(await district(['suspend', east.tenantId])).toMatchObject({
      code: 0,
      stdout: `${east.slug}: already suspended, nothing changed\n`,
    });

    const resume = await district(['resume', east.slug, '--actor', 'ops-bob', '--json']);
    expect(resume.code).toBe(0);
    expect(JSON.parse(resume.stdout)).toMatchObject({ from: 'suspended', to: 'active', changed: true, notified: null });
    expect((await platform.as(east.slug, STUDENTS)).status).toBe(200);

    expect((await eventsOf(east.tenantId)).filter((e) => e.actor === 'ops-bob')).toEqual([
      { action: 'suspend', actor: 'ops-bob', details: { from: 'active', to: 'suspended' } },
      { action: 'resume', actor: 'ops-bob', details: { from: 'suspended', to: 'active' } },
    ]);
  });

  it('with REDIS_URL the change is published on the district status channel', async () => {
    const south = demo('south-ridge');
    const subscriber = new Redis(REDIS_URL);
    const received: string[] = [];
    try {
      subscriber.on('message', (channel: string, message: string) => {
        if (channel === DISTRICT_STATUS_CHANNEL) received.push(message);
      });
      await subscriber.subscribe(DISTRICT_STATUS_CHANNEL);
      const suspend = await district(['suspend', south.slug, '--json'], { REDIS_URL });
      expect(suspend.code).toBe(0);
      expect(JSON.parse(suspend.stdout)).toMatchObject({ changed: true, propagation: expect.stringMatching(/^published on Redis/) });
      expect(JSON.parse(suspend.stdout).notified).toBeGreaterThanOrEqual(1);
      await waitFor('the suspension on the channel', () => received.includes(south.tenantId));
      expect((await district(['resume', south.slug], { REDIS_URL })).code).toBe(0);
      await waitFor('the resumption on the channel', () => received.filter((id) => id === south.tenantId).length === 2);
    } finally {
      subscriber.disconnect();
    }
  });

  it('an unknown district is refused with exit 2', async () => {
    expect(await district(['suspend', 'nowhere'])).toMatchObject({ code: 2, stderr: 'district: refused: no district nowhere\n' });
  });
});
