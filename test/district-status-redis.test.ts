/**
 * With Redis, a district's status change reaches every gateway replica at once (pub/sub), Redis being down never
 * opens the gate, and a tenant context is accepted once across every replica of a subgraph. Real redis-server
 * processes of the test's own: one for the gateways' status channel (stopped mid-test), one for the subgraphs.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readConfig } from '../config/config.ts';
import { startGateway } from '../gateway/gateway.ts';
import type { RunningServer } from '../http/server.ts';
import { measureSuspensionPropagation } from '../load/bench/suspension-propagation.ts';
import { loadSubgraphByName } from '../subgraph-server/registry.ts';
import { startSubgraph, type RunningSubgraph } from '../subgraph-server/subgraph.ts';
import { DISTRICT_STATUS_CHANNEL, publishDistrictStatusChange } from '../tenancy/district-status-events.ts';
import { RedisReplayGuard, replayKey } from '../tenancy/redis-replay-guard.ts';
import { createTenantContextSigner, TENANT_CONTEXT_HEADER } from '../tenancy/tenant-context.ts';
import { setDistrictStatus } from '../tools/onboarding.ts';
import { demo, startTestPlatform, type TestPlatform } from './support/platform.ts';
import { startTestRedis, type TestRedis } from './support/redis.ts';
import { waitFor } from './support/wait.ts';

/** Far longer than any wait here: a refusal before it can only come from the published change. */
const TTL = 60_000;
const STATUS = '{ district { status } }';
const silent = pino({ level: 'silent' });

let platform: TestPlatform;
let statusRedis: TestRedis;
let subgraphRedis: TestRedis;
let publisher: Redis;
let owner: pg.Client;
const gateways: RunningServer[] = [];

async function gatewayReplica(): Promise<RunningServer> {
  return startGateway({
    port: 0,
    auth: platform.auth,
    subgraphUrls: Object.fromEntries(Object.entries(platform.subgraphs).map(([name, s]) => [name, s.url])),
    contextPrivateKey: platform.keys.context.privateJwk,
    districtStatusTtlMs: TTL,
    supergraph: platform.config.supergraph,
    operationLimits: platform.config.operationLimits,
    districtConcurrency: platform.config.districtConcurrency,
    frontend: readConfig({}).frontend,
    redisUrl: statusRedis.url,
    logger: silent,
  });
}

const ask = async (gateway: RunningServer, slug: 'east-lake' | 'north-valley') =>
  platform.graphql({ query: STATUS }, { url: gateway.url, token: await platform.token(slug) });

/** Publishes a message that is no district id (ignored) until both gateways receive it, i.e. both are subscribed. */
const bothSubscribed = () =>
  waitFor('both gateways subscribed', async () => (await publisher.publish(DISTRICT_STATUS_CHANNEL, 'probe').catch(() => 0)) === 2);

beforeAll(async () => {
  [statusRedis, subgraphRedis] = await Promise.all([startTestRedis(), startTestRedis()]);
  platform = await startTestPlatform({ districtStatusTtlMs: TTL, redisUrl: subgraphRedis.url });
  gateways.push(await gatewayReplica(), await gatewayReplica());
  publisher = new Redis(statusRedis.url, { maxRetriesPerRequest: 0, retryStrategy: (attempt) => Math.min(attempt * 50, 500) });
  publisher.on('error', () => {});
  owner = await platform.connect(platform.databases.districts!.ownerUrl);
  await bothSubscribed();
});

afterAll(async () => {
  for (const gateway of gateways) await gateway.close();
  publisher?.disconnect();
  await platform?.stop();
  await statusRedis?.kill();
  await subgraphRedis?.kill();
});

describe('suspension across gateway replicas (Redis)', () => {
  it('a suspended district is refused by both gateways within 1 s of the publish, 20 times; resumed, it is served again', async () => {
    const eastLake = demo('east-lake').tenantId;
    const { delaysMs, summary } = await measureSuspensionPropagation({
      gatewayUrls: gateways.map((g) => g.url),
      token: await platform.token('east-lake'),
      tenantId: eastLake,
      directoryOwner: owner,
      redis: publisher,
      rounds: 20,
    });
    console.log(`suspension propagation across 2 gateways (ms): ${JSON.stringify(summary)}`);
    expect(delaysMs).toHaveLength(20);
    expect(summary.p95).toBeLessThan(1000);
    for (const gateway of gateways) expect((await ask(gateway, 'east-lake')).body.data?.district.status).toBe('ACTIVE');
  });

  it('Redis stopped: both gateways stop trusting remembered statuses and ask the directory, so a suspended district stays refused; back, changes arrive again', async () => {
    const eastLake = demo('east-lake').tenantId;
    try {
      // Both remember east-lake as ACTIVE, for the 60 s TTL.
      for (const gateway of gateways) expect((await ask(gateway, 'east-lake')).body.data?.district.status).toBe('ACTIVE');

      await statusRedis.kill();
      // Suspended while no change can be published: only a gateway that stopped trusting its memory refuses it.
      await setDistrictStatus(owner, eastLake, 'suspended');
      for (const gateway of gateways) {
        await waitFor('east-lake refused without Redis', async () => (await ask(gateway, 'east-lake')).status === 403, { timeoutMs: 5000 });
        const refused = await ask(gateway, 'east-lake');
        expect(refused.status).toBe(403);
        expect(refused.body).toEqual({ errors: [{ message: 'district is suspended', extensions: { code: 'FORBIDDEN' } }] });
        expect((await ask(gateway, 'north-valley')).body.data?.district.status).toBe('ACTIVE');
      }

      await statusRedis.restart();
      await bothSubscribed();
      await setDistrictStatus(owner, eastLake, 'active');
      await publishDistrictStatusChange(publisher, eastLake);
      for (const gateway of gateways) {
        await waitFor('east-lake served again', async () => (await ask(gateway, 'east-lake')).status === 200, { timeoutMs: 5000 });
      }
    } finally {
      await setDistrictStatus(owner, eastLake, 'active');
    }
  });
});

describe('replay guard across subgraph replicas (Redis)', () => {
  let replica: RunningSubgraph;
  let ownRedis: TestRedis;
  let lonelyReplica: RunningSubgraph;
  beforeAll(async () => {
    const students = await loadSubgraphByName('students');
    ownRedis = await startTestRedis();
    const replicaOf = (redisUrl: string) =>
      startSubgraph(students, {
        port: 0,
        databaseUrl: platform.databases.students!.appUrl,
        contextPublicKey: platform.keys.context.publicJwk,
        redisUrl,
        logger: silent,
      });
    replica = await replicaOf(subgraphRedis.url);
    lonelyReplica = await replicaOf(ownRedis.url);
  });
  afterAll(async () => {
    await replica?.close();
    await lonelyReplica?.close();
    await ownRedis?.kill();
  });

  const context = async () =>
    (await createTenantContextSigner(platform.keys.context.privateJwk))(
      { tenantId: demo('east-lake').tenantId, subject: 'replay-test', requestId: randomUUID() },
      'students',
    );
  const send = (url: string, tenantContext: string) =>
    platform.graphql(
      { query: '{ students(first: 1) { edges { node { id } } } }' },
      { url, headers: { [TENANT_CONTEXT_HEADER]: tenantContext } },
    );

  it('a context accepted by one replica is refused by the other as replayed, in either order', async () => {
    const first = await context();
    const accepted = await send(platform.subgraphs.students!.url, first);
    expect(accepted.body.data?.students.edges).toHaveLength(1);
    expect((await send(replica.url, first)).body.errors?.[0]?.message).toBe('replayed tenant context');

    const second = await context();
    expect((await send(replica.url, second)).body.data?.students.edges).toHaveLength(1);
    expect((await send(platform.subgraphs.students!.url, second)).body.errors?.[0]?.message).toBe('replayed tenant context');
  });

  it('the shared memory is one key per context, expiring with it: SET NX PX', async () => {
    const keys = new Redis(subgraphRedis.url, { maxRetriesPerRequest: 0 });
    try {
      const prefix = `test-${randomUUID()}`;
      const guard = new RedisReplayGuard(keys, { prefix });
      const jti = randomUUID();
      expect(await guard.accept(jti, Date.now() + 30_000)).toBe('accepted');
      expect(await guard.accept(jti, Date.now() + 30_000)).toBe('replayed');
      expect(await keys.get(`${prefix}:jti:${jti}`)).toBe('1');
      const ttl = await keys.pttl(replayKey(jti, prefix));
      expect(ttl).toBeGreaterThan(25_000);
      expect(ttl).toBeLessThanOrEqual(30_000);
      // Another replica's guard (same prefix) sees it too.
      expect(await new RedisReplayGuard(keys, { prefix }).accept(jti, Date.now() + 30_000)).toBe('replayed');
    } finally {
      keys.disconnect();
    }
  });

  it('Redis down: a replica refuses every context (fails closed), and accepts fresh ones once Redis is back', async () => {
    expect((await send(lonelyReplica.url, await context())).body.data?.students.edges).toHaveLength(1);
    await ownRedis.kill();
    const refused = await send(lonelyReplica.url, await context());
    expect(refused.body.data).toBeUndefined();
    expect(refused.body.errors?.[0]).toMatchObject({
      message: 'replay guard unavailable, try again',
      extensions: { code: 'UNAUTHENTICATED' },
    });
    await ownRedis.restart();
    await waitFor(
      'the replica accepting contexts again',
      async () => (await send(lonelyReplica.url, await context())).body.data !== undefined,
    );
  });
});
