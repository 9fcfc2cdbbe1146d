/**
 * How a district's status change reaches every gateway replica when Redis is configured (REDIS_URL): the operator
 * CLI writes the status in the directory database, then publishes the district's id on this channel; each gateway
 * drops what it remembers of that district and asks the directory again (Redis never holds a status).
 */
import type { Redis } from 'ioredis';

export const DISTRICT_STATUS_CHANNEL = 'k12:district-status';

/**
 * Tells every subscribed gateway that `tenantId`'s status changed; call it after the new status is committed in the
 * directory database (a gateway that asks again must read the new one). Returns how many gateways received it.
 */
export async function publishDistrictStatusChange(redis: Pick<Redis, 'publish'>, tenantId: string): Promise<number> {
  return redis.publish(DISTRICT_STATUS_CHANNEL, tenantId);
}
