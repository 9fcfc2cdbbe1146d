/**
 * One district's share of the gateway, checked before any work on its request (before parsing and planning):
 *
 * - a request rate: `perSecond` requests in each one-second window, plus `burst` more per BURST_WINDOW_SECONDS
 *   once a second's allowance is used up (rate-limiter-flexible's RateLimiter + BurstyRateLimiter); past both, 429
 *   DISTRICT_RATE_LIMITED with Retry-After;
 * - a cost rate: `costPerSecond` × COST_WINDOW_SECONDS of the operations' estimated cost (http/operation-limits.ts)
 *   in each window of COST_WINDOW_SECONDS, charged once the operation is parsed (`chargeCost`): a request for one of
 *   the largest pages weighs as much as thousands of small ones, and a count of requests alone would let a few of
 *   them take the whole box; past it, 429 DISTRICT_RATE_LIMITED. The window is long enough for an operation at the
 *   cost limit to fit in one;
 * - requests at once: `maxInFlight` run, `maxQueued` more wait their turn in arrival order in this process (a
 *   waiting request costs no CPU); past both, 429 DISTRICT_CONCURRENCY_LIMITED at once.
 *
 * With Redis (REDIS_URL) both are shared by every gateway replica: the rate windows are Redis counters, and a
 * running request holds a lease in the district's sorted set of leases (LEASE_SCRIPT: expired leases dropped,
 * then one added only while fewer than `maxInFlight` are held, atomically, by Redis's clock). A lease expires
 * LEASE_MS after it was last renewed, and it is renewed while its request runs, so a replica that dies frees its
 * district's slots within LEASE_MS. Waiting stays per process: a request that gets its turn here but finds every
 * shared slot held elsewhere is refused rather than queued a second time.
 *
 * Redis down: the limits fall back to this process's own (fail open for fairness, never for security: these limits
 * protect capacity, not data). The rate limiter's insurance limiter counts in memory, and the shared in-flight cap
 * is skipped, leaving this process's own cap; the outage is logged once (tenancy/redis.ts).
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { BurstyRateLimiter, RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { DistrictConcurrency, DistrictRate } from '../config/config.ts';
import { HttpError } from '../http/server.ts';
import { connectRedis, type RedisConnection } from '../tenancy/redis.ts';

export const DISTRICT_RATE_LIMITED = 'DISTRICT_RATE_LIMITED';
export const DISTRICT_CONCURRENCY_LIMITED = 'DISTRICT_CONCURRENCY_LIMITED';

/** A refused request may try again after this long when the cap (not the rate) refused it. */
export const CONCURRENCY_RETRY_AFTER_SECONDS = 1;
/** The window of the burst allowance taken once a second's `perSecond` is used up. */
export const BURST_WINDOW_SECONDS = 10;
/** The window of the cost rate: long, so that an operation at the cost limit fits in one window's allowance. */
export const COST_WINDOW_SECONDS = 10;
/** How long a shared slot outlives its last renewal: the most a dead replica keeps its district's slots. */
export const LEASE_MS = 10_000;
const REDIS_PREFIX = 'district-limits';

/**
 * KEYS[1] the district's leases (member: lease id, score: expiry in ms by Redis's clock); ARGV: lease id, max,
 * lease ms. Drops expired leases, then adds this one if fewer than max remain. 1 when held, 0 when refused.
 */
const LEASE_SCRIPT = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`;
/** Pushes a held lease's expiry LEASE_MS ahead (XX: a lease that already expired is not taken again). */
const RENEW_SCRIPT = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`;

export interface DistrictLimitsOptions {
  concurrency: DistrictConcurrency;
  /** Undefined, or `perSecond` 0: no rate limit. */
  rate?: DistrictRate;
  /** Shared across replicas through this Redis; undefined: in this process only. */
  redisUrl?: string;
  logger: Logger;
  /** How long a shared slot outlives its last renewal (LEASE_MS; shorter in tests). */
  leaseMs?: number;
}

export interface DistrictLimits {
  /** Runs `work` within the district's rate and concurrency, or throws a 429 HttpError before it starts. */
  run<T>(tenantId: string, work: () => Promise<T>): Promise<T>;
  /** Charges an operation's estimated cost to the district's cost rate, or throws a 429 HttpError. */
  chargeCost(tenantId: string, cost: number): Promise<void>;
  /** Resolves once Redis is connected (at once without it), or after `timeoutMs`. */
  ready(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

interface LocalDistrict {
  running: number;
  /** Resolves the next waiting request's turn; a finished request hands its place straight to it. */
  waiting: (() => void)[];
}

const rateLimited = (retryAfterSeconds: number, rate: DistrictRate) =>
  new HttpError(
    429,
    DISTRICT_RATE_LIMITED,
    `District rate limit reached (${rate.perSecond} requests a second, ${rate.burst} more per ${BURST_WINDOW_SECONDS} s); retry after ${retryAfterSeconds} s`,
    { 'retry-after': String(retryAfterSeconds) },
  );

const costLimited = (retryAfterSeconds: number, rate: DistrictRate) =>
  new HttpError(
    429,
    DISTRICT_RATE_LIMITED,
    `District cost rate limit reached (${rate.costPerSecond * COST_WINDOW_SECONDS} estimated cost per ${COST_WINDOW_SECONDS} s); retry after ${retryAfterSeconds} s`,
    { 'retry-after': String(retryAfterSeconds) },
  );

const concurrencyLimited = (limits: DistrictConcurrency, shared: boolean) =>
  new HttpError(
    429,
    DISTRICT_CONCURRENCY_LIMITED,
    shared
      ? `District concurrency limit of ${limits.maxInFlight} running requests across the gateways reached; retry after ${CONCURRENCY_RETRY_AFTER_SECONDS} s`
      : `District concurrency limit of ${limits.maxInFlight} running and ${limits.maxQueued} waiting requests reached; retry after ${CONCURRENCY_RETRY_AFTER_SECONDS} s`,
    { 'retry-after': String(CONCURRENCY_RETRY_AFTER_SECONDS) },
  );

type RateLimiter = Pick<RateLimiterAbstract, 'consume'> | BurstyRateLimiter;

function createRateLimiters(rate: DistrictRate, connection: RedisConnection | undefined): { requests?: RateLimiter; cost?: RateLimiter } {
  const limiter = (points: number, duration: number, keyPrefix: string) => {
    const memory = new RateLimiterMemory({ points, duration, keyPrefix });
    if (!connection) return memory;
    return new RateLimiterRedis({
      storeClient: connection.redis,
      points,
      duration,
      keyPrefix: `${REDIS_PREFIX}:${keyPrefix}`,
      // Redis down or slow: this process counts alone until it answers again.
      insuranceLimiter: memory,
      rejectIfRedisNotReady: true,
    });
  };
  const perSecond = limiter(rate.perSecond, 1, 'rate');
  const requests = rate.burst > 0 ? new BurstyRateLimiter(perSecond, limiter(rate.burst, BURST_WINDOW_SECONDS, 'burst')) : perSecond;
  const cost = rate.costPerSecond > 0 ? limiter(rate.costPerSecond * COST_WINDOW_SECONDS, COST_WINDOW_SECONDS, 'cost') : undefined;
  return { requests, cost };
}

export function createDistrictLimits(options: DistrictLimitsOptions): DistrictLimits {
  const { concurrency, rate, logger } = options;
  const leaseMs = options.leaseMs ?? LEASE_MS;
  const connection = options.redisUrl ? connectRedis(options.redisUrl, logger, 'district limits') : undefined;
  const rateLimiters = rate ? createRateLimiters(rate, connection) : {};
  const rateLimiter = rate && rate.perSecond > 0 ? rateLimiters.requests : undefined;
  const leases = connection?.redis;
  leases?.defineCommand('districtLease', { numberOfKeys: 1, lua: LEASE_SCRIPT });
  leases?.defineCommand('districtLeaseRenew', { numberOfKeys: 1, lua: RENEW_SCRIPT });
  type LeaseCommands = {
    districtLease(key: string, id: string, max: number, ms: number): Promise<number>;
    districtLeaseRenew(key: string, id: string, ms: number): Promise<number>;
  };
  const leaseCommands = leases as unknown as LeaseCommands | undefined;

  // Only districts with requests under way: an idle one is forgotten.
  const districts = new Map<string, LocalDistrict>();

  async function consume(limiter: RateLimiter | undefined, tenantId: string, points: number, refused: (retryAfter: number) => HttpError) {
    if (!limiter) return;
    try {
      await limiter.consume(tenantId, points);
    } catch (refusal) {
      if (refusal instanceof RateLimiterRes) throw refused(Math.max(1, Math.ceil(refusal.msBeforeNext / 1000)));
      // Neither Redis nor the insurance limiter answered: admit (fail open) and say so.
      connection?.failed(refusal);
    }
  }

  /** A shared slot for the district, renewed until released; undefined when Redis cannot say (its outage is logged). */
  async function leaseSharedSlot(tenantId: string): Promise<{ release(): void } | 'refused' | undefined> {
    if (!leaseCommands) return undefined;
    const key = `${REDIS_PREFIX}:leases:${tenantId}`;
    const id = randomUUID();
    let held: number;
    try {
      held = await leaseCommands.districtLease(key, id, concurrency.maxInFlight, leaseMs);
    } catch (error) {
      connection!.failed(error);
      return undefined;
    }
    if (held !== 1) return 'refused';
    const renewal = setInterval(() => void leaseCommands.districtLeaseRenew(key, id, leaseMs).catch(connection!.failed), leaseMs / 3);
    renewal.unref();
    return {
      release() {
        clearInterval(renewal);
        // Not released (Redis down): it expires within leaseMs.
        leases!.zrem(key, id).catch(connection!.failed);
      },
    };
  }

  return {
    async run(tenantId, work) {
      await consume(rateLimiter, tenantId, 1, (retryAfter) => rateLimited(retryAfter, rate!));
      let district = districts.get(tenantId);
      if (!district) districts.set(tenantId, (district = { running: 0, waiting: [] }));
      if (district.running + district.waiting.length >= concurrency.maxInFlight + concurrency.maxQueued) {
        throw concurrencyLimited(concurrency, false);
      }
      if (district.running < concurrency.maxInFlight) district.running++;
      else await new Promise<void>((turn) => district.waiting.push(turn));
      const done = () => {
        const next = district.waiting.shift();
        if (next) next();
        else if (--district.running === 0) districts.delete(tenantId);
      };
      const lease = await leaseSharedSlot(tenantId);
      if (lease === 'refused') {
        done();
        throw concurrencyLimited(concurrency, true);
      }
      try {
        return await work();
      } finally {
        lease?.release();
        done();
      }
    },
    // At most a whole window's allowance: an operation within the limits always runs, if alone in its window.
    chargeCost: (tenantId, cost) =>
      consume(rateLimiters.cost, tenantId, Math.min(Math.max(1, cost), (rate?.costPerSecond ?? 0) * COST_WINDOW_SECONDS), (retryAfter) =>
        costLimited(retryAfter, rate!),
      ),
    ready: async (timeoutMs) => connection?.ready(timeoutMs),
    async close() {
      await connection?.close();
    },
  };
}
