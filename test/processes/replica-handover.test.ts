/**
 * A subgraph replica replaced under load: the gateway (its own process, gateway/main.ts) serves a steady
 * stream while a second students replica (subgraph-server/main.ts, REUSE_PORT on the same port) starts and
 * the first gets SIGTERM and drains. Not one request may fail.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DEV_AUDIENCE, DEV_ISSUER } from '../../dev/keys.ts';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { freePort, killSpawned, postGraphQL, projectFile, spawnNode, steadyLoad, type NodeProcess } from './support.ts';

const RATE = 60;
/** Load before the second replica starts, and after the first one has exited. */
const BEFORE_MS = 1000;
const AFTER_MS = 2000;
const QUERY = '{ students(first: 5) { edges { node { firstName school { name } } } } }';

let platform: TestPlatform;
let folder: string;
const started: NodeProcess[] = [];

beforeAll(async () => {
  platform = await startTestPlatform();
  folder = await mkdtemp(join(tmpdir(), 'k12-handover-'));
});
afterAll(async () => {
  await Promise.all(started.map((p) => p.stop()));
  killSpawned();
  await platform?.stop();
  await rm(folder, { recursive: true, force: true });
});

it('replaces a subgraph replica under load without a failed request at the gateway', { timeout: 120_000 }, async () => {
  const studentsPort = await freePort();
  const replicaEnv = {
    STUDENTS_PORT: String(studentsPort),
    REUSE_PORT: 'true',
    STUDENTS_DATABASE_URL: platform.databases.students!.appUrl,
    TENANT_CONTEXT_PUBLIC_KEY: JSON.stringify(platform.keys.context.publicJwk),
    LOG_LEVEL: 'info',
  };
  const first = spawnNode([projectFile('subgraph-server/main.ts'), 'students'], replicaEnv);
  started.push(first);
  await first.line(/subgraph ready/, 60_000);

  const jwksFile = join(folder, 'jwks.json');
  await writeFile(jwksFile, JSON.stringify(platform.keys.devIssuer.jwks));
  const gatewayPort = await freePort();
  const gateway = spawnNode([projectFile('gateway/main.ts')], {
    GATEWAY_PORT: String(gatewayPort),
    TENANT_CONTEXT_PRIVATE_KEY: JSON.stringify(platform.keys.context.privateJwk),
    JWKS_FILE: jwksFile,
    JWT_ISSUER: DEV_ISSUER,
    JWT_AUDIENCE: DEV_AUDIENCE,
    DISTRICTS_ROUTING_URL: platform.subgraphs.districts!.url,
    STAFF_ROUTING_URL: platform.subgraphs.staff!.url,
    STUDENTS_ROUTING_URL: `http://127.0.0.1:${studentsPort}/graphql`,
    // The district's status, looked up once, stays cached for the run: on a starved machine a refresh from the
    // (in-test) districts subgraph can outlast its stale window and answer 503, which is not what this measures.
    DISTRICT_STATUS_TTL_MS: '600000',
    // One district drives the whole load here: the per-district limits (tuned for many districts) must not shape it.
    DISTRICT_MAX_IN_FLIGHT: '64',
    DISTRICT_MAX_QUEUED: '1024',
    DISTRICT_RATE_PER_SECOND: '0',
    DISTRICT_COST_PER_SECOND: '0',
    LOG_LEVEL: 'info',
  });
  started.push(gateway);
  await gateway.line(/gateway ready/, 60_000);
  const gatewayUrl = `http://127.0.0.1:${gatewayPort}/graphql`;

  const token = await platform.token('north-valley');
  // Warm: connections open, district status cached, plan cached, code compiled, before the clock starts.
  for (let i = 0; i < 20; i++) expect((await postGraphQL(gatewayUrl, token, QUERY)).body.data.students.edges.length).toBeGreaterThan(0);
  // eslint-disable-next-line prefer-const -- assigned once, after the load (which reads it) has started
  let handoverDoneAt: number | undefined;
  const loadStartedAt = performance.now();
  const load = steadyLoad({
    url: gatewayUrl,
    token,
    rate: RATE,
    next: () => ({ operation: 'students', query: QUERY }),
    until: () => handoverDoneAt !== undefined && performance.now() > handoverDoneAt + AFTER_MS,
  });

  await new Promise((r) => setTimeout(r, BEFORE_MS));
  const secondStartedAt = performance.now();
  const second = spawnNode([projectFile('subgraph-server/main.ts'), 'students'], replicaEnv);
  started.push(second);
  await second.line(/subgraph ready/, 60_000);
  const drainStartedAt = performance.now();
  const firstExit = await first.stop('SIGTERM');
  handoverDoneAt = performance.now();
  const outcomes = await load;

  // The setting is real: the handover happened mid-run, the first replica drained and exited cleanly.
  expect(firstExit).toEqual({ code: 0, signal: null });
  expect(first.lines.some((l) => l.includes('students stopping: draining in-flight requests'))).toBe(true);
  expect(second.child.exitCode).toBeNull();

  const handoverMs = handoverDoneAt - loadStartedAt;
  const afterHandover = outcomes.filter((o) => o.sentAtMs > handoverMs);
  expect(afterHandover.length).toBeGreaterThanOrEqual(RATE);
  const failed = outcomes.filter((o) => o.error !== null);
  const retried = gateway.lines.filter((l) => l.includes('subgraph fetch retried')).length;
  console.log(
    `replica handover: ${outcomes.length} requests at ${RATE}/s, ${failed.length} failed; second replica ready after ${Math.round(drainStartedAt - secondStartedAt)} ms, ` +
      `first drained and exited in ${Math.round(handoverDoneAt - drainStartedAt)} ms; ${afterHandover.length} requests after it exited; ${retried} subgraph fetches retried`,
  );
  expect(failed).toEqual([]);
});
