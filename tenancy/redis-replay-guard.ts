/**
 * The replay guard shared by every replica of every subgraph (REDIS_URL): a context's `jti` is accepted by the first
 * `SET <prefix>:jti:<jti> 1 NX PX <ms until exp>` that creates the key, anywhere; every later one finds it and
 * refuses the context as replayed. The key expires with the context, so Redis holds only contexts still valid.
 * Redis unreachable (or slower than the client's command timeout): `unavailable`, and the verifier refuses the
 * context. Failing closed, never falling back to a per-process memory: a fallback would accept, on each replica, a
 * context another replica already accepted, for as long as the outage lasts (docs/isolation.md).
 */
import type { Redis } from 'ioredis';
import type { ReplayMemory, ReplayVerdict } from './tenant-context.ts';

export const REPLAY_KEY_PREFIX = 'k12';
export const replayKey = (jti: string, prefix = REPLAY_KEY_PREFIX) => `${prefix}:jti:${jti}`;

export class RedisReplayGuard implements ReplayMemory {
  readonly #redis: Pick<Redis, 'set'>;
  readonly #prefix: string;
  readonly #onUnavailable: (error: unknown) => void;
  constructor(redis: Pick<Redis, 'set'>, options: { prefix?: string; onUnavailable?: (error: unknown) => void } = {}) {
    this.#redis = redis;
    this.#prefix = options.prefix ?? REPLAY_KEY_PREFIX;
    this.#onUnavailable = options.onUnavailable ?? (() => {});
  }

  async accept(jti: string, expiresAtMs: number, now = Date.now()): Promise<ReplayVerdict> {
    try {
      const created = await this.#redis.set(replayKey(jti, this.#prefix), '1', 'PX', Math.max(1, Math.ceil(expiresAtMs - now)), 'NX');
      return created === 'OK' ? 'accepted' : 'replayed';
    } catch (error) {
      this.#onUnavailable(error);
      return 'unavailable';
    }
  }
}
