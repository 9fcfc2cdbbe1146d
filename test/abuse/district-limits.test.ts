/**
 * The gateway's per-district limits (gateway/district-limits.ts): a rate and a cap on requests at once, answered
 * with 429, Retry-After and a code of their own; in process without Redis, shared by every replica with it, and back
 * to each process's own when Redis is down.
 */
import { createHash } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readConfig } from '../../config/config.ts';
import { startGateway } from '../../gateway/gateway.ts';
import {
  COST_WINDOW_SECONDS,
  DISTRICT_CONCURRENCY_LIMITED,
  DISTRICT_RATE_LIMITED,
  createDistrictLimits,
  type DistrictLimits,
  type DistrictLimitsOptions,
} from '../../gateway/district-limits.ts';
import { HttpError, type RunningServer } from '../../http/server.ts';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

const NORTH = '5a0c9a1e-1f2b-4c3d-8e4f-5a6b7c8d9e01';
const SOUTH = '8b2d4e6f-1a3c-4e5f-9a7b-2c3d4e5f6071';
const EAST = '2f6e8a1c-3b5d-4f7a-9c1e-3d5f7a9b1c20';
const logger = pino({ level: 'silent' });
const NO_RATE = { perSecond: 0, burst: 0, costPerSecond: 0 };

/** A request that runs until released, recording when it started. */
function gate() {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const state = { started: false };
  return { state, release, work: async () => ((state.started = true), await released, 'done') };
}

const refusalOf = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (error: unknown) => error,
  );
const settle = () => new Promise((resolve) => setImmediate(resolve));

const opened: DistrictLimits[] = [];
function limits(options: Omit<DistrictLimitsOptions, 'logger'>): DistrictLimits {
  const created = createDistrictLimits({ ...options, logger });
  opened.push(created);
  return created;
}
afterAll(async () => {
  await Promise.all(opened.map((l) => l.close()));
});

describe('in process (no REDIS_URL)', () => {
  it('runs maxInFlight at once, queues maxQueued in arrival order, and refuses the next with 429 DISTRICT_CONCURRENCY_LIMITED', async () => {
    const run = limits({ concurrency: { maxInFlight: 2, maxQueued: 3 }, rate: NO_RATE });
    const gates = Array.from({ length: 5 }, gate);
    const results = gates.map((g) => run.run(NORTH, g.work));
    await settle();
    expect(gates.map((g) => g.state.started)).toEqual([true, true, false, false, false]);

    const refusal = await refusalOf(run.run(NORTH, async () => 'never'));
    expect(refusal).toBeInstanceOf(HttpError);
    expect(refusal).toMatchObject({ status: 429, code: DISTRICT_CONCURRENCY_LIMITED, headers: { 'retry-after': '1' } });
    expect((refusal as HttpError).message).toBe('District concurrency limit of 2 running and 3 waiting requests reached; retry after 1 s');
    // Another district is not held up by the first one's queue.
    expect(await run.run(SOUTH, async () => 'south')).toBe('south');

    gates[0]!.release();
    await results[0];
    await settle();
    expect(gates.map((g) => g.state.started)).toEqual([true, true, true, false, false]);
    for (const g of gates) g.release();
    expect(await Promise.all(results)).toEqual(['done', 'done', 'done', 'done', 'done']);
  });

  it('a failing request frees its slot', async () => {
    const run = limits({ concurrency: { maxInFlight: 1, maxQueued: 0 }, rate: NO_RATE });
    await expect(run.run(NORTH, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await run.run(NORTH, async () => 'next')).toBe('next');
  });

  it('admits perSecond, then the burst, then refuses with 429 DISTRICT_RATE_LIMITED and Retry-After; other districts unaffected', async () => {
    const run = limits({ concurrency: { maxInFlight: 100, maxQueued: 0 }, rate: { perSecond: 3, burst: 2, costPerSecond: 0 } });
    const outcomes = await Promise.all(Array.from({ length: 8 }, () => refusalOf(run.run(NORTH, async () => 'ok'))));
    const refused = outcomes.filter((o) => o !== undefined);
    expect(refused).toHaveLength(3);
    for (const refusal of refused) {
      expect(refusal).toMatchObject({ status: 429, code: DISTRICT_RATE_LIMITED });
      expect(Number((refusal as HttpError).headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }
    expect(await run.run(SOUTH, async () => 'south')).toBe('south');
  });

  it('charges estimated cost to a window of COST_WINDOW_SECONDS; past it, 429 DISTRICT_RATE_LIMITED; an operation costing more than a window runs alone in one', async () => {
    const run = limits({ concurrency: { maxInFlight: 100, maxQueued: 0 }, rate: { perSecond: 0, burst: 0, costPerSecond: 10 } });
    await run.chargeCost(NORTH, 60);
    await run.chargeCost(NORTH, 40);
    const refusal = await refusalOf(run.chargeCost(NORTH, 1));
    expect(refusal).toMatchObject({ status: 429, code: DISTRICT_RATE_LIMITED });
    expect((refusal as HttpError).message).toMatch(/^District cost rate limit reached \(100 estimated cost per 10 s\); retry after \d+ s$/);
    expect(Number((refusal as HttpError).headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number((refusal as HttpError).headers['retry-after'])).toBeLessThanOrEqual(COST_WINDOW_SECONDS);
    // A window's worth and more, for a district with nothing spent yet: charged as one whole window.
    await run.chargeCost(SOUTH, 5000);
    expect(await refusalOf(run.chargeCost(SOUTH, 1))).toMatchObject({ code: DISTRICT_RATE_LIMITED });
  });
});

describe('shared through Redis by every gateway replica', () => {
  let redis: TestRedis;
  let platform: TestPlatform;
  const gateways: RunningServer[] = [];
  const RATE = { perSecond: 5, burst: 0, costPerSecond: 0 };

  beforeAll(async () => {
    redis = await startTestRedis();
    platform = await startTestPlatform();
    const base = readConfig({});
    for (let replica = 0; replica < 2; replica++) {
      gateways.push(
        await startGateway({
          port: 0,
          auth: platform.auth,
          subgraphUrls: Object.fromEntries(Object.entries(platform.subgraphs).map(([name, s]) => [name, s.url])),
          contextPrivateKey: platform.keys.context.privateJwk,
          districtStatusTtlMs: 60_000,
          supergraph: platform.config.supergraph,
          operationLimits: platform.config.operationLimits,
          districtConcurrency: { maxInFlight: 64, maxQueued: 0 },
          districtRate: RATE,
          frontend: { ...base.frontend, explorer: false },
          redisUrl: redis.url,
          logger,
        }),
      );
    }
  });
  afterAll(async () => {
    await Promise.all(gateways.map((g) => g.close(1000)));
    await platform?.stop();
    await redis?.kill();
  });

  it('two gateways admit the rate once between them: 10 requests at once, 5 to each, 5 served and 5 refused with 429', async () => {
    const token = await platform.token('north-valley');
    const send = (url: string) =>
      fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: '{ district { name } }' }),
      }).then(async (r) => ({
        status: r.status,
        retryAfter: r.headers.get('retry-after'),
        body: (await r.json()) as { data?: unknown; errors?: { extensions?: { code?: string } }[] },
      }));
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => send(gateways[i % 2]!.url)));
    const served = answers.filter((a) => a.status === 200);
    const refused = answers.filter((a) => a.status === 429);
    // Each gateway alone would have admitted all 5 of its own.
    expect(served).toHaveLength(RATE.perSecond);
    expect(refused).toHaveLength(10 - RATE.perSecond);
    for (const a of served) expect(a.body.data).toEqual({ district: { name: expect.any(String) } });
    for (const a of refused) {
      expect(a.body.errors?.[0]?.extensions?.code).toBe(DISTRICT_RATE_LIMITED);
      expect(Number(a.retryAfter)).toBeGreaterThanOrEqual(1);
    }
  });

  it('an operation sent by its persisted-query hash alone is charged to the cost rate too, and refused with 429 and Retry-After', async () => {
    const base = readConfig({});
    const gateway = await startGateway({
      port: 0,
      auth: platform.auth,
      subgraphUrls: Object.fromEntries(Object.entries(platform.subgraphs).map(([name, s]) => [name, s.url])),
      contextPrivateKey: platform.keys.context.privateJwk,
      districtStatusTtlMs: 60_000,
      supergraph: platform.config.supergraph,
      operationLimits: platform.config.operationLimits,
      districtConcurrency: { maxInFlight: 64, maxQueued: 0 },
      // 10 of estimated cost per 10 s; `{ district { name } }` costs 2.
      districtRate: { perSecond: 0, burst: 0, costPerSecond: 1 },
      frontend: { ...base.frontend, explorer: false },
      logger,
    });
    try {
      const token = await platform.token('north-valley');
      const query = '{ district { name } }';
      const persistedQuery = { version: 1, sha256Hash: createHash('sha256').update(query).digest('hex') };
      const send = async (body: unknown) => {
        const response = await fetch(gateway.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify(body),
        });
        return {
          status: response.status,
          retryAfter: response.headers.get('retry-after'),
          body: (await response.json()) as { data?: unknown; errors?: { message: string; extensions?: { code?: string } }[] },
        };
      };
      // Registered with its text (charged before Apollo), then by its hash alone (charged in the plugin).
      expect((await send({ query, extensions: { persistedQuery } })).status).toBe(200);
      const answers = [];
      for (let i = 0; i < 5; i++) answers.push(await send({ extensions: { persistedQuery } }));
      expect(answers.slice(0, 4).map((a) => a.status)).toEqual([200, 200, 200, 200]);
      expect(answers[4]).toMatchObject({ status: 429, body: { errors: [{ extensions: { code: DISTRICT_RATE_LIMITED } }] } });
      expect(answers[4]!.body.errors![0]!.message).toMatch(/^District cost rate limit reached \(10 estimated cost per 10 s\)/);
      expect(Number(answers[4]!.retryAfter)).toBeGreaterThanOrEqual(1);
    } finally {
      await gateway.close(1000);
    }
  });

  it('the cap on requests at once holds across replicas, frees a slot on release, and a dead replica’s slots expire', async () => {
    const options = { concurrency: { maxInFlight: 2, maxQueued: 0 }, rate: NO_RATE, redisUrl: redis.url, leaseMs: 1000 };
    const replicaA = limits(options);
    const replicaB = limits(options);
    // Both replicas connected: a request before that would be checked in process only.
    await Promise.all([replicaA.ready(10_000), replicaB.ready(10_000)]);

    const held = [gate(), gate()];
    const running = held.map((g) => replicaA.run(NORTH, g.work));
    await waitFor('both slots taken on replica A', () => held.every((g) => g.state.started));
    const refusal = await refusalOf(replicaB.run(NORTH, async () => 'never'));
    expect(refusal).toMatchObject({ status: 429, code: DISTRICT_CONCURRENCY_LIMITED, headers: { 'retry-after': '1' } });
    expect((refusal as HttpError).message).toBe(
      'District concurrency limit of 2 running requests across the gateways reached; retry after 1 s',
    );
    expect(await replicaB.run(SOUTH, async () => 'south')).toBe('south');

    held[0]!.release();
    await running[0];
    expect(await waitFor('a slot freed for replica B', () => refusalOf(replicaB.run(NORTH, async () => 'b')).then((e) => e === undefined)));

    // Replica A dies holding a slot (its connection gone, its renewals with it): the slot expires within the lease.
    const dying = gate();
    const dyingRun = replicaA.run(NORTH, dying.work);
    await waitFor('replica A holding two slots again', () => dying.state.started);
    await replicaA.close();
    const started = performance.now();
    await waitFor('the dead replica’s slots expiring', () => refusalOf(replicaB.run(NORTH, async () => 'b')).then((e) => e === undefined), {
      timeoutMs: 10_000,
    });
    console.log(
      `district limits: a dead replica's slot was free again after ${Math.round(performance.now() - started)} ms (lease 1000 ms)`,
    );
    held[1]!.release();
    dying.release();
    await Promise.all([running[1], dyingRun]);
  });

  it('Redis down: each replica falls back to its own limits (no error, still 429 past them) and shares again once Redis is back', async () => {
    const options = {
      concurrency: { maxInFlight: 1, maxQueued: 0 },
      rate: { perSecond: 2, burst: 0, costPerSecond: 0 },
      redisUrl: redis.url,
    };
    const replicaA = limits(options);
    const replicaB = limits(options);
    await Promise.all([replicaA.ready(10_000), replicaB.ready(10_000)]);
    await redis.kill();

    // Rate in this process (the insurance limiter): 2 admitted, the third refused.
    const outcomes = [];
    for (let i = 0; i < 3; i++) outcomes.push(await refusalOf(replicaA.run(NORTH, async () => 'ok')));
    expect(outcomes.slice(0, 2)).toEqual([undefined, undefined]);
    expect(outcomes[2]).toMatchObject({ status: 429, code: DISTRICT_RATE_LIMITED });
    // Concurrency in this process: one running here, the next refused here; the other replica counts alone.
    const held = gate();
    const running = replicaB.run(SOUTH, held.work);
    await waitFor('replica B running', () => held.state.started);
    expect(await refusalOf(replicaB.run(SOUTH, async () => 'never'))).toMatchObject({ code: DISTRICT_CONCURRENCY_LIMITED });
    expect(await replicaA.run(SOUTH, async () => 'a')).toBe('a');
    held.release();
    await running;

    await redis.restart();
    await Promise.all([replicaA.ready(10_000), replicaB.ready(10_000)]);
    // Back on Redis (reconnected within a second): a slot held on replica A refuses replica B again.
    await waitFor(
      'the replicas sharing slots again',
      async () => {
        const shared = gate();
        const holding = replicaA.run(EAST, shared.work).catch(() => undefined);
        await waitFor('replica A running', () => shared.state.started);
        const refusal = await refusalOf(replicaB.run(EAST, async () => 'b'));
        shared.release();
        await holding;
        return (refusal as HttpError | undefined)?.code === DISTRICT_CONCURRENCY_LIMITED;
      },
      { timeoutMs: 15_000, intervalMs: 500 },
    );
  });
});
