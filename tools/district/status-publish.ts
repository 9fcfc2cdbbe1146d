/**
 * Tells every gateway replica that a district's status changed (REDIS_URL): drops the shared status entry and
 * publishes the district's id on DISTRICT_STATUS_CHANNEL (tenancy/district-status-events.ts).
 */
import { Redis } from 'ioredis';
import { DISTRICT_STATUS_CHANNEL, districtStatusKey } from '../../tenancy/district-status-events.ts';

/** Returns the number of subscribers that received the message. */
export async function publishDistrictStatusChange(redisUrl: string, tenantId: string): Promise<number> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 3000 });
  try {
    await redis.connect();
    await redis.del(districtStatusKey(tenantId));
    return await redis.publish(DISTRICT_STATUS_CHANNEL, tenantId);
  } finally {
    redis.disconnect();
  }
}
