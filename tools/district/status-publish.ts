/**
 * Tells every gateway replica that a district's status changed (REDIS_URL), on a connection of its own: the CLI
 * lives for one command.
 */
import { Redis } from 'ioredis';
import { publishDistrictStatusChange } from '../../tenancy/district-status-events.ts';

/** Returns the number of subscribers (gateways) that received the message. */
export async function notifyGateways(redisUrl: string, tenantId: string): Promise<number> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 3000 });
  try {
    await redis.connect();
    return await publishDistrictStatusChange(redis, tenantId);
  } finally {
    redis.disconnect();
  }
}
