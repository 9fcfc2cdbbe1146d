/**
 * `npm start` (node dev/start.ts) as a developer runs it: each service a child process of its own through its
 * entry point, log lines prefixed with the service name, a killed child restarted, and nothing left running
 * after SIGTERM. On the run's PostgreSQL (DATABASE_URL), under a prefix of its own.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, inject, it } from 'vitest';
import { readRegistry } from '../../config/registry.ts';
import { demo } from '../support/platform.ts';
import {
  dropPrefixedDatabases,
  freePort,
  killSpawned,
  postGraphQL,
  processesWithEnvironment,
  projectFile,
  spawnNode,
  waitFor,
} from './support.ts';

const adminUrl = inject('adminUrl');
const prefix = `t_${randomBytes(4).toString('hex')}`;
let dataDir: string | undefined;

afterAll(async () => {
  killSpawned();
  await dropPrefixedDatabases(adminUrl, prefix);
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

it(
  'runs each service as its own child process, restarts one that dies, and leaves nothing running after SIGTERM',
  { timeout: 180_000 },
  async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'k12-launcher-'));
    const subgraphs = readRegistry();
    const env: Record<string, string> = {
      DATA_DIR: dataDir,
      DATABASE_URL: adminUrl,
      DB_PREFIX: prefix,
      GATEWAY_PORT: String(await freePort()),
      LOG_LEVEL: 'info',
      SHUTDOWN_GRACE_MS: '5000',
    };
    for (const entry of subgraphs) env[entry.port.env] = String(await freePort());
    const launcher = spawnNode([projectFile('dev/start.ts')], env);
    await launcher.line(/^Ctrl-C stops the platform\./, 120_000);

    // One process per service, each a child of the launcher, through its entry point.
    const ours = () => processesWithEnvironment('DATA_DIR', dataDir!);
    const serviceProcess = (entry: string) => ours().find((p) => p.command.endsWith(entry));
    const children = [...subgraphs.map((e) => `subgraph-server/main.ts ${e.name}`), 'gateway/main.ts'].map((entry) => ({
      entry,
      process: serviceProcess(entry),
    }));
    for (const { entry, process } of children) {
      expect(process, `a process running ${entry}`).toBeDefined();
      expect(process!.parentPid).toBe(launcher.pid);
    }
    // Their lines, prefixed with their names.
    for (const name of [...subgraphs.map((e) => e.name), 'gateway']) {
      expect(
        launcher.lines.some((l) => new RegExp(`^${name} *\\| .*"msg":"(subgraph|gateway) ready"`).test(l)),
        `a ready line prefixed "${name} |"`,
      ).toBe(true);
    }

    // The printed curl line works as printed.
    const curl = launcher.lines.find((l) => l.startsWith('curl -s '))!;
    const [, url, token] = /^curl -s (\S+) .*authorization: Bearer ([\w.-]+)'/.exec(curl)!;
    const query = '{ district { slug } students(first: 1) { edges { node { firstName } } } }';
    const first = await postGraphQL(url!, token!, query);
    expect(first.body.data.district.slug).toBe(demo('north-valley').slug);
    expect(first.body.data.students.edges).toHaveLength(1);

    // A child that dies is restarted, and the gateway serves through it again.
    const students = serviceProcess('subgraph-server/main.ts students')!;
    process.kill(students.pid, 'SIGKILL');
    await launcher.line(/"service":"students".*"signal":"SIGKILL".*students exited; restarting/, 10_000);
    const restarted = await waitFor(
      'a new students process',
      () => {
        const found = serviceProcess('subgraph-server/main.ts students');
        return found && found.pid !== students.pid ? found : undefined;
      },
      { timeoutMs: 30_000 },
    );
    expect(restarted.parentPid).toBe(launcher.pid);
    await waitFor(
      'the gateway to serve students again',
      async () => (await postGraphQL(url!, token!, query)).body.data?.students?.edges.length === 1,
      { timeoutMs: 60_000, intervalMs: 250 },
    );

    // SIGTERM stops everything and exits 0.
    expect(await launcher.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    await waitFor('every process of this platform to be gone', () => ours().length === 0, { timeoutMs: 15_000 });
  },
);
