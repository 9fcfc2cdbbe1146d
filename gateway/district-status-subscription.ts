/**
 * With Redis (REDIS_URL), the gateway hears every district status change at once: it subscribes to
 * DISTRICT_STATUS_CHANNEL and makes the district gate forget the published district, so that district's next
 * request asks the directory subgraph (the source of truth) again. Redis is never asked for a status, so Redis being
 * down never opens the gate: the gate keeps asking the directory with its TTL, as without Redis.
 * A change published while the subscription is down is missed, so every remembered status is forgotten when the
 * subscription is lost and again once it is back (after SUBSCRIBE is confirmed): no status outlives a missed
 * change by more than the gate's own TTL. A connection that dies without closing (a silent network loss) is found
 * by a PING every `HEARTBEAT_MS`: one that fails or times out (1 s) drops the connection, which reconnects.
 */
import type { Logger } from 'pino';
import { DISTRICT_STATUS_CHANNEL } from '../tenancy/district-status-events.ts';
import { isUuid } from '../tenancy/tenant-context.ts';
import { connectRedis } from '../tenancy/redis.ts';
import type { DistrictGate } from './district-status.ts';

const HEARTBEAT_MS = 1000;

export function subscribeToDistrictStatus(redisUrl: string, gate: Pick<DistrictGate, 'forget' | 'forgetAll'>, logger: Logger) {
  const { redis, failed, close } = connectRedis(redisUrl, logger, 'district status subscription', { subscriber: true });
  let subscribed = false;
  let closed = false;
  /** Drops the connection after a failed command; ioredis reconnects, and 'ready' subscribes again. */
  const reconnect = (error: unknown) => {
    if (closed) return;
    failed(error);
    redis.disconnect(true);
  };
  redis.on('message', (channel: string, message: string) => {
    if (channel === DISTRICT_STATUS_CHANNEL && isUuid(message)) gate.forget(message.toLowerCase());
  });
  redis.on('close', () => {
    if (!subscribed) return;
    subscribed = false;
    gate.forgetAll();
  });
  redis.on('ready', () => {
    redis.subscribe(DISTRICT_STATUS_CHANNEL).then(
      () => {
        subscribed = true;
        gate.forgetAll();
      },
      // Not subscribed on a live connection would miss every change: start over on a new one ('ready' again).
      reconnect,
    );
  });
  const heartbeat = setInterval(() => {
    if (!subscribed) return;
    redis.ping().catch(reconnect);
  }, HEARTBEAT_MS);
  heartbeat.unref();
  return {
    async close() {
      closed = true;
      clearInterval(heartbeat);
      await close();
    },
  };
}
