/**
 * `npm run subgraph:new` end to end, in a scratch copy of the project (its files as checked out, node_modules
 * linked): the generator writes a working subgraph (`attendance`, or the first free name of a short list, so
 * the test also passes in a project that already has one), and with no hand edit the copy type-checks,
 * `migration:create` finds nothing left to generate, `migrate` + `check:policies` report 0 findings on the new
 * database, and the composition test, the isolation battery and the Gherkin scenarios pass with the new
 * subgraph's table among the ones they attack. Nothing outside subgraphs/<name>/ changes but the registry,
 * the supergraph and migrations/<name>/.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { promisify } from 'node:util';
import pg, { escapeIdentifier } from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { PROJECT_ROOT, readRegistry } from '../config/registry.ts';
import { ownerRoleName } from '../database/database.ts';
import { namesOf, problemsWithName } from '../tools/subgraph-new/subgraph-new.ts';

const run = promisify(execFile);
const NODE = join(PROJECT_ROOT, 'node_modules/.bin/node');
const NAME = ['attendance', 'field_trips', 'library_loans'].find((name) => problemsWithName(name).length === 0)!;
const N = namesOf(NAME);
/** Each child process gets a deadline and fails the test loudly when it passes it. */
const CHILD_TIMEOUT_MS = 5 * 60_000;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

let copy: string;
let env: Record<string, string | undefined>;
const prefix = `t_${randomBytes(4).toString('hex')}`;
const original = new Map<string, string>();

const digest = async (file: string) =>
  createHash('sha256')
    .update(await readFile(file))
    .digest('hex');

/** Every file under `root` (node_modules and the data folder aside), relative, with its digest. */
async function tree(root: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    const path = relative(root, join(entry.parentPath, entry.name));
    if (!entry.isFile() || /^(node_modules|\.data)(\/|$)/.test(path)) continue;
    files.set(path, await digest(join(root, path)));
  }
  return files;
}

async function inCopy(args: string[], extraEnv: Record<string, string> = {}): Promise<Result> {
  return run(NODE, args, { cwd: copy, env: { ...env, ...extraEnv }, timeout: CHILD_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number | string; killed?: boolean; stdout: string; stderr: string }) => {
      if (error.killed) throw new Error(`node ${args.join(' ')} ran past ${CHILD_TIMEOUT_MS / 1000} s:\n${error.stdout}\n${error.stderr}`);
      return { code: Number(error.code), stdout: error.stdout, stderr: error.stderr };
    },
  );
}

beforeAll(async () => {
  copy = await mkdtemp(join(tmpdir(), 'k12-subgraph-new-'));
  const { stdout } = await run('git', ['ls-files', '--cached', '--others', '--exclude-standard'], {
    cwd: PROJECT_ROOT,
    maxBuffer: 16 * 1024 * 1024,
  });
  const files = stdout.split('\n').filter((f) => f && !f.startsWith('node_modules') && existsSync(join(PROJECT_ROOT, f)));
  expect(files).toContain('tools/subgraph-new/subgraph-new.ts');
  for (const file of files) {
    await mkdir(dirname(join(copy, file)), { recursive: true });
    await cp(join(PROJECT_ROOT, file), join(copy, file));
  }
  await symlink(join(PROJECT_ROOT, 'node_modules'), join(copy, 'node_modules'), 'dir');
  for (const [path, hash] of await tree(copy)) original.set(path, hash);
  env = {
    ...process.env,
    DATABASE_URL: inject('adminUrl'),
    DB_PREFIX: prefix,
    DATA_DIR: join(copy, '.data'),
    LOG_LEVEL: 'warn',
    NODE_OPTIONS: undefined,
    VITEST: undefined,
    VITEST_POOL_ID: undefined,
    VITEST_WORKER_ID: undefined,
  };
});

afterAll(async () => {
  const admin = new pg.Client({ connectionString: inject('adminUrl') });
  await admin.connect();
  try {
    for (const service of [...readRegistry().map((s) => s.name), NAME]) {
      await admin.query(`drop database if exists ${escapeIdentifier(`${prefix}_${service}`)} with (force)`);
      await admin.query(`drop role if exists ${escapeIdentifier(`${prefix}_${service}_app`)}`);
    }
    await admin.query(`drop role if exists ${escapeIdentifier(ownerRoleName(prefix))}`);
  } finally {
    await admin.end();
  }
  if (copy) await rm(copy, { recursive: true, force: true });
});

describe(`npm run subgraph:new -- ${NAME}, in a scratch copy`, () => {
  it('refuses a name already registered, a reserved word and a non-identifier, changing nothing', { timeout: 2 * 60_000 }, async () => {
    for (const [name, message] of [
      [readRegistry()[0]!.name, 'is already registered'],
      ['gateway', 'is a reserved word'],
      ['Attendance-2', 'must be a lower-case identifier'],
    ] as const) {
      const result = await inCopy(['tools/subgraph-new/subgraph-new.ts', name]);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(message);
    }
    expect(await tree(copy)).toEqual(original);
  });

  it(
    'writes the subgraph, its registry entry, the supergraph and its first migration, and nothing else',
    { timeout: 3 * 60_000 },
    async () => {
      const result = await inCopy(['tools/subgraph-new/subgraph-new.ts', NAME]);
      expect(result, result.stderr).toMatchObject({ code: 0 });
      const after = await tree(copy);
      const changed = [...after.keys()].filter((path) => original.get(path) !== after.get(path)).sort();
      const migration = changed.find((path) => new RegExp(`^migrations/${NAME}/Migration\\d+_initial\\.ts$`).test(path));
      expect(changed).toEqual(
        [
          `migrations/${NAME}/.snapshot-${NAME}.json`,
          migration,
          'schema/subgraphs.json',
          'schema/supergraph.graphql',
          ...['demo.ts', 'entities.ts', 'generated/resolvers-types.ts', 'index.ts', 'resolvers.ts', 'schema.graphql'].map(
            (file) => `subgraphs/${NAME}/${file}`,
          ),
        ].sort(),
      );
      expect([...original.keys()].filter((path) => !after.has(path))).toEqual([]);
      const sql = await readFile(join(copy, migration!), 'utf8');
      expect(sql).toContain('for (const sql of createTenantFunction) this.addSql(sql);');
      expect(sql).toContain(`alter table "${N.table}" force row level security;`);
      expect(sql).toContain(
        `create policy "tenant_isolation" on "${N.table}" using (tenant_id = (select app.current_tenant_id())) with check (tenant_id = (select app.current_tenant_id()));`,
      );
      const registry = JSON.parse(await readFile(join(copy, 'schema/subgraphs.json'), 'utf8')) as {
        subgraphs: { name: string; port: { env: string; default: number } }[];
      };
      const highest = Math.max(4000, ...readRegistry().map((s) => s.port.default));
      expect(registry.subgraphs.at(-1)).toMatchObject({ name: NAME, port: { env: N.envVar, default: highest + 1 }, database: NAME });
      const sdl = await readFile(join(copy, `subgraphs/${NAME}/schema.graphql`), 'utf8');
      expect(sdl).toContain(`type ${N.entity} @key(fields: "id")`);
      const supergraph = await readFile(join(copy, 'schema/supergraph.graphql'), 'utf8');
      expect(supergraph).toContain(`  ${N.list}(\n    """How many to return: from 1 to 100."""\n    first: Int = 100\n`);
      expect(supergraph).toContain(`  ): [${N.entity}!]! @join__field(graph: ${NAME.toUpperCase()})`);
    },
  );

  it('type-checks, and migration:create finds nothing more to generate for any service', { timeout: 6 * 60_000 }, async () => {
    const tsc = await inCopy(['node_modules/.bin/tsc', '-p', '.']);
    expect(tsc, tsc.stdout).toMatchObject({ code: 0 });
    const services = [...readRegistry().map((s) => s.name), NAME];
    const created = [];
    for (const service of services) created.push({ service, ...(await inCopy(['tools/migration-create.ts', service])) });
    expect(created.map(({ service, code, stdout }) => ({ service, code, stdout }))).toEqual(
      services.map((service) => ({ service, code: 0, stdout: 'no changes\n' })),
    );
  });

  it('migrates, and check:policies reports 0 findings on every database, the new one included', { timeout: 3 * 60_000 }, async () => {
    const migrate = await inCopy(['tools/migrate.ts']);
    expect(migrate, migrate.stderr).toMatchObject({ code: 0 });
    expect(migrate.stdout).toMatch(new RegExp(`${prefix}_${NAME}: applied Migration\\d+_initial`));
    const lint = await inCopy(['tools/policy-lint/cli.ts', '--json']);
    expect(lint, lint.stderr).toMatchObject({ code: 0 });
    const report = JSON.parse(lint.stdout) as { databases: string[]; findings: unknown[] };
    expect(report.databases).toContain(`${prefix}_${NAME}`);
    expect(report.findings).toEqual([]);
  });

  it(
    'passes the composition test, the isolation battery and the Gherkin scenarios, attacking the new table',
    { timeout: 8 * 60_000 },
    async () => {
      const out = join(copy, '.data', 'vitest.json');
      const vitest = await inCopy(
        [
          'node_modules/vitest/vitest.mjs',
          'run',
          'test/composition.test.ts',
          'test/isolation/battery.test.ts',
          'test/features/district-isolation.steps.test.ts',
          '--maxWorkers=1',
          '--reporter=json',
          `--outputFile=${out}`,
        ],
        { TEST_LOG_LEVEL: 'silent' },
      );
      const report = JSON.parse(await readFile(out, 'utf8')) as {
        numFailedTests: number;
        numPassedTests: number;
        testResults: { assertionResults: { fullName: string; status: string }[] }[];
      };
      const results = report.testResults.flatMap((file) => file.assertionResults);
      expect(results.filter((r) => r.status !== 'passed').map((r) => r.fullName)).toEqual([]);
      expect(vitest.code).toBe(0);
      // Every per-table probe of the battery ran on the new table: as many as on the students' table, also keyed by id.
      const probesOn = (table: string) => results.filter((r) => r.fullName.includes(`${table}:`)).length;
      expect(probesOn('students.student')).toBeGreaterThan(10);
      expect(probesOn(`${NAME}.${N.table}`)).toBe(probesOn('students.student'));
      expect(results.some((r) => r.fullName.includes(`${NAME}: _entities with other districts' ${N.entity} keys`))).toBe(true);
      expect(results.some((r) => r.fullName.includes(`${NAME}: ${N.item}(id) with other districts`))).toBe(true);
      expect(results.filter((r) => r.fullName.includes('Reads stay in the district')).length).toBeGreaterThan(0);
      expect(report.numPassedTests).toBe(results.length);
    },
  );
});
