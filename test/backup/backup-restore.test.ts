/**
 * Backups keep their policies: each service database is dumped (custom format) as the owner and restored
 * into a fresh database; the copies lint clean, keep every policy and RLS flag, and keep districts apart —
 * both for the application role at the SQL level and for a subgraph started on the restored copy. Dumping
 * as the application role fails loudly and leaves no file.
 * pg_dump refuses servers newer than itself, so this runs only where pg_dump's major >= the server's
 * (in CI: the PostgreSQL 15 pass; the embedded PostgreSQL 16 pass skips it with the reason).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import pg, { escapeIdentifier } from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { BackupError, dumpDatabase, restoreDatabase, unsupportedReason } from '../../tools/backup/pg-tools.ts';
import { lintDatabase } from '../../tools/policy-lint/lint.ts';
import { loadSubgraphs } from '../../subgraph-server/registry.ts';

const subgraphs = await loadSubgraphs();
import { startSubgraph } from '../../subgraph-server/subgraph.ts';
import { createTenantContextSigner, TENANT_CONTEXT_HEADER } from '../../tenancy/tenant-context.ts';
import { demo, startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { auditDemoDistricts } from '../support/tenant-tables.ts';

const skipReason = await unsupportedReason(inject('adminUrl'));
if (skipReason) console.log(`backup-restore skipped: ${skipReason}`);
const north = demo('north-valley').tenantId;
const south = demo('south-ridge').tenantId;

const POLICY_SHAPE = `select c.relname, c.relrowsecurity, c.relforcerowsecurity, p.polname, p.polcmd, p.polpermissive,
                             pg_get_expr(p.polqual, p.polrelid) as using, pg_get_expr(p.polwithcheck, p.polrelid) as check
                        from pg_class c left join pg_policy p on p.polrelid = c.oid
                       where c.relnamespace = 'public'::regnamespace and c.relkind = 'r' order by 1, 4`;
const TENANT_TABLES = `select table_name from information_schema.columns where table_schema = 'public' and column_name = 'tenant_id' order by 1`;

describe.skipIf(skipReason)(`backups keep their policies${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let platform: TestPlatform;
  let folder: string;
  const restored: Record<string, { database: string; ownerUrl: string; appUrl: string }> = {};
  /** Clients on the restored copies, closed before the copies are dropped. */
  const copyClients: pg.Client[] = [];
  const connectCopy = async (url: string) => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    copyClients.push(client);
    return client;
  };
  const withDatabase = (url: string, database: string) => Object.assign(new URL(url), { pathname: `/${database}` }).toString();

  const dumps: Record<string, string> = {};
  beforeAll(async () => {
    platform = await startTestPlatform();
    await auditDemoDistricts(platform);
    folder = await mkdtemp(join(tmpdir(), 'k12-backup-'));
    // Every test below reads the restored copies: make them here, not in a test that would have to run first.
    const admin = await platform.connect(platform.adminUrl);
    for (const db of Object.values(platform.databases)) {
      const file = join(folder, `${db.database}.dump`);
      await dumpDatabase(db.ownerUrl, file);
      dumps[db.service] = file;
      // A fresh database provisioned like the original: owned by the owner, CONNECT for the application role only.
      const copy = `${db.database}_restored`;
      await admin.query(
        `create database ${escapeIdentifier(copy)} owner ${escapeIdentifier(`${platform.config.prefix}_owner`)} template template0`,
      );
      await admin.query(`revoke all on database ${escapeIdentifier(copy)} from public`);
      await admin.query(`grant connect on database ${escapeIdentifier(copy)} to ${escapeIdentifier(db.appRole)}`);
      restored[db.service] = { database: copy, ownerUrl: withDatabase(db.ownerUrl, copy), appUrl: withDatabase(db.appUrl, copy) };
      await restoreDatabase(restored[db.service]!.ownerUrl, file);
    }
  });
  afterAll(async () => {
    await Promise.all(copyClients.map((client) => client.end().catch(() => {})));
    const admin = await platform?.connect(platform.adminUrl);
    for (const { database } of Object.values(restored)) {
      await admin?.query(`drop database if exists ${escapeIdentifier(database)} with (force)`);
    }
    await platform?.stop();
    if (folder) await rm(folder, { recursive: true, force: true });
  });

  it('dumps every service database as the owner and restores it into a fresh database', async () => {
    expect(Object.keys(dumps)).toEqual(subgraphs.map((s) => s.name));
    for (const file of Object.values(dumps)) expect(existsSync(file)).toBe(true);
    expect(Object.keys(restored)).toEqual(subgraphs.map((s) => s.name));
    for (const { ownerUrl } of Object.values(restored)) {
      const copy = await connectCopy(ownerUrl);
      expect((await copy.query<{ n: number }>(`select count(*)::int as n from (${TENANT_TABLES}) t`)).rows[0]!.n).toBeGreaterThan(0);
    }
  });

  it('the copies keep every RLS flag, policy and row, and the policy linter finds nothing', async () => {
    for (const db of Object.values(platform.databases)) {
      const original = await platform.connect(db.ownerUrl);
      const copy = await connectCopy(restored[db.service]!.ownerUrl);
      expect((await copy.query(POLICY_SHAPE)).rows).toEqual((await original.query(POLICY_SHAPE)).rows);
      const tables = (await original.query<{ table_name: string }>(TENANT_TABLES)).rows;
      expect(tables.length).toBeGreaterThan(0);
      for (const { table_name } of tables) {
        const sql = `select tenant_id, count(*)::int from ${escapeIdentifier(table_name)} group by 1 order by 1`;
        const counts = (await original.query(sql)).rows;
        expect(counts.length, `${table_name} holds rows`).toBeGreaterThan(0);
        expect((await copy.query(sql)).rows).toEqual(counts);
      }
      expect(await lintDatabase(copy, { appRoles: [db.appRole] })).toEqual([]);
    }
  });

  it('isolation smoke on the copies: the application role sees one district at a time, and none without a tenant', async () => {
    for (const db of Object.values(platform.databases)) {
      const app = await connectCopy(restored[db.service]!.appUrl);
      const tables = (await app.query<{ table_name: string }>(TENANT_TABLES)).rows;
      expect(tables.length).toBeGreaterThan(0);
      for (const { table_name } of tables) {
        const select = `select distinct tenant_id from ${escapeIdentifier(table_name)}`;
        expect((await app.query(select)).rows).toEqual([]);
        await app.query('begin');
        await app.query("select set_config('app.current_tenant', $1, true)", [north]);
        const seen = (await app.query<{ tenant_id: string }>(select)).rows.map((r) => r.tenant_id);
        await app.query('rollback');
        // North Valley has rows in every tenant table: it sees exactly its own district.
        expect(seen, table_name).toEqual([north]);
      }
    }
  });

  it('a subgraph started on the restored copy serves only the signed district', async () => {
    const students = subgraphs.find((s) => s.name === 'students')!;
    const subgraph = await startSubgraph(students, {
      port: 0,
      databaseUrl: restored.students!.appUrl,
      contextPublicKey: platform.keys.context.publicJwk,
      poolSize: 1,
      logger: pino({ level: 'silent' }),
    });
    try {
      const sign = await createTenantContextSigner(platform.keys.context.privateJwk);
      const owner = await connectCopy(restored.students!.ownerUrl);
      const southIds = (await owner.query('select id from student where tenant_id = $1', [south])).rows.map((r) => r.id);
      const northCount = (await owner.query('select count(*)::int as n from student where tenant_id = $1', [north])).rows[0].n;
      const { body, text } = await platform.graphql(
        { query: '{ students(first: 100) { edges { node { id } } } }' },
        {
          url: subgraph.url,
          headers: {
            [TENANT_CONTEXT_HEADER]: await sign({ tenantId: north, subject: 'backup-test', requestId: randomUUID() }, 'students'),
          },
        },
      );
      expect(body.errors).toBeUndefined();
      expect(northCount).toBeGreaterThan(0);
      expect(southIds.length).toBeGreaterThan(0);
      expect(body.data.students.edges).toHaveLength(northCount);
      expect(southIds.filter((id: string) => text.includes(id))).toEqual([]);
    } finally {
      await subgraph.close();
    }
  });

  it('dumping as the application role fails loudly and leaves no file', async () => {
    const db = platform.databases.students!;
    const whole = join(folder, 'as-app.dump');
    await expect(dumpDatabase(db.appUrl, whole)).rejects.toThrow(
      new BackupError('pg_dump failed: pg_dump: error: query failed: ERROR:  permission denied for table mikro_orm_migrations'),
    );
    expect(existsSync(whole)).toBe(false);
    expect(existsSync(`${whole}.partial`)).toBe(false);
  });

  it('even a tenant table the application role may read is refused by RLS rather than dumped partially', async () => {
    // pg_dump runs with row_security = off: for a role subject to RLS that is an error, never a filtered COPY.
    const client = new pg.Client({ connectionString: platform.databases.students!.appUrl });
    await client.connect();
    try {
      await client.query('set row_security = off');
      await expect(client.query('copy public.student to stdout')).rejects.toThrow(
        'query would be affected by row-level security policy for table "student"',
      );
    } finally {
      await client.end();
    }
  });
});
