/**
 * Restart after a crash (issue 8, item 5): `npm start` killed with SIGKILL leaves its embedded PostgreSQL
 * running on its port; its service processes must not keep serving, and the next `npm start` must come up
 * on the same data. Its own DATA_DIR, embedded PostgreSQL, free ports.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { afterAll, expect, it } from 'vitest';
import { readRegistry } from '../../config/registry.ts';
import { issueDevToken, loadOrCreateKeys } from '../../dev/keys.ts';
import { demo } from '../support/platform.ts';
import {
  freePort,
  killSpawned,
  postGraphQL,
  processesWithEnvironment,
  projectFile,
  spawnNode,
  waitFor,
  type NodeProcess,
} from './support.ts';

let dataDir: string | undefined;

/** True when something accepts TCP connections on the port. */
const acceptsConnections = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const answer = (accepted: boolean) => {
      socket.destroy();
      resolve(accepted);
    };
    socket.once('connect', () => answer(true)).once('error', () => answer(false));
    socket.setTimeout(2000, () => answer(false));
  });

afterAll(async () => {
  killSpawned();
  // Whatever a failed run left behind (the embedded PostgreSQL above all), by pid.
  if (dataDir) for (const leftover of processesWithEnvironment('DATA_DIR', dataDir)) process.kill(leftover.pid, 'SIGKILL');
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

it(
  'comes up again with the same data after npm start was killed with SIGKILL, and leaves nothing running when stopped',
  { timeout: 120_000 },
  async () => {
    const startedAt = Date.now();
    dataDir = await mkdtemp(join(tmpdir(), 'k12-crash-'));
    // Run as root, PostgreSQL runs as its own user, which must be able to enter the folder.
    await chmod(dataDir, 0o755);
    const embeddedPort = await freePort();
    const env: Record<string, string> = {
      DATA_DIR: dataDir,
      EMBEDDED_PG_PORT: String(embeddedPort),
      GATEWAY_PORT: String(await freePort()),
      LOG_LEVEL: 'warn',
    };
    for (const entry of readRegistry()) env[entry.port.env] = String(await freePort());
    const gatewayUrl = `http://127.0.0.1:${env.GATEWAY_PORT}/graphql`;
    const ours = () => processesWithEnvironment('DATA_DIR', dataDir!);
    const start = async (): Promise<NodeProcess> => {
      const launcher = spawnNode([projectFile('dev/start.ts')], env);
      await launcher.line(/^Ctrl-C stops the platform\./, 60_000);
      return launcher;
    };

    const first = await start();
    const token = await issueDevToken(await loadOrCreateKeys(dataDir), { tenantId: demo('north-valley').tenantId });
    const schools = await postGraphQL(gatewayUrl, token, '{ district { schools { id } } }');
    const schoolId = schools.body.data.district.schools[0].id as string;
    const enrolled = await postGraphQL(gatewayUrl, token, 'mutation($input: EnrollStudentInput!) { enrollStudent(input: $input) { id } }', {
      input: { firstName: 'Written', lastName: 'Before-The-Crash', grade: 4, schoolId },
    });
    const studentId = enrolled.body.data.enrollStudent.id as string;
    expect(studentId).toMatch(/^[0-9a-f-]{36}$/);

    // The crash: the launcher dies at once. Its services notice and stop; PostgreSQL stays, holding its port.
    const postgres = ours().find((p) => p.command.includes('postgres -D'));
    expect(postgres, 'the embedded PostgreSQL').toBeDefined();
    expect(await first.stop('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
    await waitFor('the service processes to exit after their launcher died', () => ours().every((p) => !p.command.includes('main.ts')), {
      timeoutMs: 20_000,
    });
    const orphans = ours();
    expect(orphans.map((p) => p.pid)).toContain(postgres!.pid);
    expect(await acceptsConnections(embeddedPort)).toBe(true);

    const second = await start();
    expect(second.lines.some((l) => l.includes('stopping the embedded PostgreSQL a dead run left behind'))).toBe(true);
    const after = await postGraphQL(gatewayUrl, token, 'query($id: ID!) { student(id: $id) { firstName lastName } }', { id: studentId });
    expect(after.body.data.student).toEqual({ firstName: 'Written', lastName: 'Before-The-Crash' });
    expect(ours().map((p) => p.pid)).not.toContain(postgres!.pid);

    expect(await second.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    await waitFor('every process of this platform to be gone', () => ours().length === 0, { timeoutMs: 15_000 });
    console.log(
      `restart after crash: first start, SIGKILL, start on the same data, stop: ${Math.round((Date.now() - startedAt) / 1000)} s`,
    );
  },
);
