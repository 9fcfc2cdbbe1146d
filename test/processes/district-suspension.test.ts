/**
 * District suspension across replicas, as deployed: two gateway processes (gateway/main.ts), each in front of its own
 * replica of the students subgraph (subgraph-server/main.ts), all on one redis-server of the test's own, and the
 * operator's `npm run district` CLI (a process too) changing statuses. The districts and staff subgraphs are the test
 * platform's (in-process, without Redis, so the directory answers while Redis is down). Status TTL 60 s: a
 * refusal before that can only come from the published change or from a gateway that stopped trusting its memory.
 * test/district-status-redis.test.ts covers the same mechanisms in-process (and the propagation figure).
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DEV_AUDIENCE, DEV_ISSUER } from '../../dev/keys.ts';
import { DISTRICT_STATUS_CHANNEL } from '../../tenancy/district-status-events.ts';
import { createTenantContextSigner, TENANT_CONTEXT_HEADER } from '../../tenancy/tenant-context.ts';
import { setDistrictStatus } from '../../tools/onboarding.ts';
import { demo, startTestPlatform, type DemoSlug, type TestPlatform } from '../support/platform.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { freePort, killSpawned, postGraphQL, projectFile, spawnNode, waitFor, type NodeProcess } from './support.ts';

const TTL_MS = 60_000;
/** The issue's propagation bound: every gateway refuses a suspended district's next request within 1 s. */
const PROPAGATION_MS = 1000;
const STATUS = '{ district { status } }';

let platform: TestPlatform;
let redis: TestRedis;
let folder: string;
let directory: pg.Client;
const started: NodeProcess[] = [];
const replicas: { url: string; process: NodeProcess }[] = [];
const gateways: { url: string; process: NodeProcess }[] = [];

async function startReplica(): Promise<void> {
  const port = await freePort();
  const replica = spawnNode([projectFile('subgraph-server/main.ts'), 'students'], {
    STUDENTS_PORT: String(port),
    STUDENTS_DATABASE_URL: platform.databases.students!.appUrl,
    TENANT_CONTEXT_PUBLIC_KEY: JSON.stringify(platform.keys.context.publicJwk),
    REDIS_URL: redis.url,
    LOG_LEVEL: 'info',
  });
  started.push(replica);
  replicas.push({ url: `http://127.0.0.1:${port}/graphql`, process: replica });
}

async function startGatewayProcess(studentsUrl: string, jwksFile: string): Promise<void> {
  const port = await freePort();
  const gateway = spawnNode([projectFile('gateway/main.ts')], {
    GATEWAY_PORT: String(port),
    TENANT_CONTEXT_PRIVATE_KEY: JSON.stringify(platform.keys.context.privateJwk),
    JWKS_FILE: jwksFile,
    JWT_ISSUER: DEV_ISSUER,
    JWT_AUDIENCE: DEV_AUDIENCE,
    DISTRICTS_ROUTING_URL: platform.subgraphs.districts!.url,
    STAFF_ROUTING_URL: platform.subgraphs.staff!.url,
    STUDENTS_ROUTING_URL: studentsUrl,
    REDIS_URL: redis.url,
    DISTRICT_STATUS_TTL_MS: String(TTL_MS),
    LOG_LEVEL: 'info',
  });
  started.push(gateway);
  gateways.push({ url: `http://127.0.0.1:${port}/graphql`, process: gateway });
}

/** The operator's CLI as a process on the test platform's databases, publishing on the test's Redis. */
async function district(...args: string[]): Promise<{ code: number | null; lines: string[] }> {
  const cli = spawnNode([projectFile('tools/district/cli.ts'), ...args, '--actor', 'process-test'], {
    DATABASE_URL: platform.adminUrl,
    DB_PREFIX: platform.config.prefix,
    DATA_DIR: platform.config.dataDir,
    REDIS_URL: redis.url,
    DISTRICT_STATUS_TTL_MS: String(TTL_MS),
    LOG_LEVEL: 'warn',
  });
  const { code } = await cli.exited;
  return { code, lines: cli.lines };
}

const ask = async (gatewayUrl: string, slug: DemoSlug) => postGraphQL(gatewayUrl, await platform.token(slug), STATUS);
const statusOn = async (gatewayUrl: string, slug: DemoSlug) => (await ask(gatewayUrl, slug)).status;

/** Subscribers of the status channel: both gateway processes are subscribed once it counts them. */
async function subscribers(): Promise<number> {
  const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => {});
  try {
    await client.connect();
    return Number(((await client.pubsub('NUMSUB', DISTRICT_STATUS_CHANNEL)) as [string, number])[1]);
  } catch {
    return 0;
  } finally {
    client.disconnect();
  }
}

/** Both gateways answer `slug` with `status`, each within `timeoutMs`; resolves with the slower one's delay (ms). */
async function bothAnswer(slug: DemoSlug, status: number, timeoutMs: number): Promise<number> {
  const since = performance.now();
  const answered = await Promise.all(
    gateways.map((g) =>
      waitFor(`${g.url} answering ${slug} with ${status}`, async () => (await statusOn(g.url, slug)) === status && performance.now(), {
        timeoutMs,
        intervalMs: 20,
      }),
    ),
  );
  return Math.max(...answered) - since;
}

beforeAll(async () => {
  redis = await startTestRedis();
  // The test platform's own gateway stays off Redis: the two gateway processes are the only subscribers.
  platform = await startTestPlatform({ districtStatusTtlMs: TTL_MS });
  directory = await platform.connect(platform.databases.districts!.ownerUrl);
  folder = await mkdtemp(join(tmpdir(), 'k12-suspension-'));
  const jwksFile = join(folder, 'jwks.json');
  await writeFile(jwksFile, JSON.stringify(platform.keys.devIssuer.jwks));
  await startReplica();
  await startReplica();
  for (const replica of replicas) await replica.process.line(/subgraph ready/, 90_000);
  for (const replica of replicas) await startGatewayProcess(replica.url, jwksFile);
  for (const gateway of gateways) await gateway.process.line(/gateway ready/, 90_000);
  await waitFor('both gateway processes subscribed to the status channel', async () => (await subscribers()) === 2, { timeoutMs: 30_000 });
}, 240_000);

afterAll(async () => {
  await Promise.all(started.map((p) => p.stop()));
  killSpawned();
  await platform?.stop();
  await redis?.kill();
  if (folder) await rm(folder, { recursive: true, force: true });
});

it(
  '`district suspend` closes the district on both gateway processes within 1 s, `district resume` opens it again',
  { timeout: 120_000 },
  async () => {
    // Both gateways serve east-lake, students through their own replica: ACTIVE is remembered for the 60 s TTL.
    for (const gateway of gateways) {
      expect((await ask(gateway.url, 'east-lake')).body.data?.district.status).toBe('ACTIVE');
      const students = await postGraphQL(
        gateway.url,
        await platform.token('east-lake'),
        '{ students(first: 1) { edges { node { id } } } }',
      );
      expect(students.body.data?.students.edges).toHaveLength(1);
    }
    try {
      const suspended = await district('suspend', 'east-lake');
      expect(suspended.code).toBe(0);
      expect(suspended.lines.join('\n')).toContain('published on Redis (2 subscriber(s))');
      const refusedAfterMs = await bothAnswer('east-lake', 403, PROPAGATION_MS);
      for (const gateway of gateways) {
        expect((await ask(gateway.url, 'east-lake')).body).toEqual({
          errors: [{ message: 'district is suspended', extensions: { code: 'FORBIDDEN' } }],
        });
        expect((await ask(gateway.url, 'north-valley')).body.data?.district.status).toBe('ACTIVE');
      }

      const resumed = await district('resume', 'east-lake');
      expect(resumed.code).toBe(0);
      const servedAfterMs = await bothAnswer('east-lake', 200, PROPAGATION_MS);
      for (const gateway of gateways) expect((await ask(gateway.url, 'east-lake')).body.data?.district.status).toBe('ACTIVE');
      console.log(
        `two gateway processes: refused ${Math.round(refusedAfterMs)} ms, served again ${Math.round(servedAfterMs)} ms after the CLI exited`,
      );
    } finally {
      await setDistrictStatus(directory, demo('east-lake').tenantId, 'active');
    }
  },
);

it(
  'a tenant context accepted by one students replica process is refused as replayed by the other, in either order',
  { timeout: 60_000 },
  async () => {
    const sign = await createTenantContextSigner(platform.keys.context.privateJwk);
    const context = () =>
      sign({ tenantId: demo('east-lake').tenantId, subject: 'replay-process-test', requestId: randomUUID() }, 'students');
    const send = async (url: string, tenantContext: string) => {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', [TENANT_CONTEXT_HEADER]: tenantContext },
        body: JSON.stringify({ query: '{ students(first: 1) { edges { node { id } } } }' }),
        signal: AbortSignal.timeout(10_000),
      });
      return (await response.json()) as { data?: { students: { edges: unknown[] } }; errors?: { message: string }[] };
    };
    for (const [accepting, replaying] of [
      [replicas[0]!, replicas[1]!],
      [replicas[1]!, replicas[0]!],
    ] as const) {
      const captured = await context();
      expect((await send(accepting.url, captured)).data?.students.edges).toHaveLength(1);
      const replayed = await send(replaying.url, captured);
      expect(replayed.data).toBeUndefined();
      expect(replayed.errors?.[0]?.message).toBe('replayed tenant context');
    }
  },
);

it(
  'Redis stopped mid-test: a suspended district stays refused on both gateways; a suspension during the outage reaches them once Redis is back',
  { timeout: 120_000 },
  async () => {
    const eastLake = demo('east-lake').tenantId;
    const northValley = demo('north-valley').tenantId;
    try {
      for (const gateway of gateways) expect(await statusOn(gateway.url, 'north-valley')).toBe(200);
      expect((await district('suspend', 'east-lake')).code).toBe(0);
      await bothAnswer('east-lake', 403, 5000);

      await redis.kill();
      // Both gateways have noticed the outage (their subscription is gone) before the gate is checked.
      for (const gateway of gateways) await gateway.process.line(/redis unavailable/, 15_000);
      for (const gateway of gateways) {
        const refused = await ask(gateway.url, 'east-lake');
        expect(refused.status).toBe(403);
        expect(refused.body).toEqual({ errors: [{ message: 'district is suspended', extensions: { code: 'FORBIDDEN' } }] });
        expect((await ask(gateway.url, 'north-valley')).body.data?.district.status).toBe('ACTIVE');
      }

      // Suspended while nothing can be published: the CLI writes the status and fails on the publish (exit 1). The
      // gateways, which remembered north-valley as ACTIVE during the outage, notice within 2 x the TTL (not waited for
      // here) or when their subscription is back, whichever is first.
      const duringOutage = await district('suspend', 'north-valley');
      expect(duringOutage.code).toBe(1);
      expect(duringOutage.lines.join('\n')).toContain('status written, but publishing on Redis failed');
      expect((await directory.query('select status from district where tenant_id = $1', [northValley])).rows[0].status).toBe('suspended');

      await redis.restart();
      await waitFor('both gateway processes subscribed again', async () => (await subscribers()) === 2, { timeoutMs: 30_000 });
      // Resubscribed, each gateway forgets what it remembered during the outage: the missed change takes effect.
      await bothAnswer('north-valley', 403, 5000);
      for (const gateway of gateways) expect(await statusOn(gateway.url, 'east-lake')).toBe(403);

      expect((await district('resume', 'east-lake')).code).toBe(0);
      expect((await district('resume', 'north-valley')).code).toBe(0);
      await bothAnswer('east-lake', 200, 5000);
      await bothAnswer('north-valley', 200, 5000);
    } finally {
      await setDistrictStatus(directory, eastLake, 'active');
      await setDistrictStatus(directory, northValley, 'active');
    }
  },
);
