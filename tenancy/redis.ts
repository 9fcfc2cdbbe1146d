/**
 * The platform's Redis connections (REDIS_URL). Commands fail at once while the connection is down (no offline
 * queue) or after `COMMAND_TIMEOUT_MS`, so a caller decides what an outage means instead of waiting on it;
 * ioredis reconnects in the background. An outage is logged once when it starts (warn) and once when it ends
 * (info), not on every reconnection attempt or refused command.
 */
import { Redis, type RedisOptions } from 'ioredis';

const COMMAND_TIMEOUT_MS = 1000;

export interface RedisLog {
  warn(details: object, message: string): void;
  info(details: object, message: string): void;
}

export interface RedisConnection {
  redis: Redis;
  /** Records a failed command: logged if it is the first sign of an outage. */
  failed(error: unknown): void;
  /** Resolves once connected, or after `timeoutMs` (a service starts without Redis rather than wait on it). */
  ready(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

/** `purpose` names the connection in the log; `subscriber`: a connection for SUBSCRIBE, which resubscribes itself. */
export function connectRedis(url: string, log: RedisLog, purpose: string, options: { subscriber?: boolean } = {}): RedisConnection {
  const settings: RedisOptions = {
    maxRetriesPerRequest: 0,
    // Reconnect after 50 ms, growing to at most 1 s between attempts, forever.
    retryStrategy: (attempt) => Math.min(attempt * 50, 1000),
    commandTimeout: COMMAND_TIMEOUT_MS,
    ...(options.subscriber ? { autoResubscribe: false } : { enableOfflineQueue: false }),
  };
  const redis = new Redis(url, settings);
  let down = false;
  let closing = false;
  const failed = (error: unknown) => {
    if (down || closing) return;
    down = true;
    log.warn({ redis: purpose, err: error instanceof Error ? error.message : String(error) }, 'redis unavailable');
  };
  redis.on('error', failed);
  redis.on('close', () => failed(new Error('connection closed')));
  redis.on('ready', () => {
    if (!down) return;
    down = false;
    log.info({ redis: purpose }, 'redis available again');
  });
  return {
    redis,
    failed,
    ready: (timeoutMs) =>
      new Promise<void>((resolve) => {
        if (redis.status === 'ready') return resolve();
        const timer = setTimeout(resolve, timeoutMs);
        redis.once('ready', () => {
          clearTimeout(timer);
          resolve();
        });
      }),
    async close() {
      closing = true;
      // QUIT when connected; otherwise stop reconnecting.
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
