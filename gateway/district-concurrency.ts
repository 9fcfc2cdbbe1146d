/**
 * One district's requests share the gateway fairly with everyone else's: at most `maxInFlight` of them run at
 * once, `maxQueued` more wait their turn (in arrival order), and past that the gateway answers 429 with
 * Retry-After at once, before Apollo does any work. A flood from one district then costs the others a few
 * requests' worth of CPU, not a queue of hundreds. Per gateway process (in memory).
 */
import pLimit, { type LimitFunction } from 'p-limit';
import type { DistrictConcurrency } from '../config/config.ts';
import { HttpError } from '../http/server.ts';

export const RETRY_AFTER_SECONDS = 1;

export function createDistrictConcurrency(limits: DistrictConcurrency) {
  const districts = new Map<string, LimitFunction>();
  return async function runForDistrict<T>(tenantId: string, work: () => Promise<T>): Promise<T> {
    let limit = districts.get(tenantId);
    if (!limit) districts.set(tenantId, (limit = pLimit(limits.maxInFlight)));
    if (limit.activeCount + limit.pendingCount >= limits.maxInFlight + limits.maxQueued) {
      throw new HttpError(
        429,
        'TOO_MANY_REQUESTS',
        `District concurrency limit of ${limits.maxInFlight} running and ${limits.maxQueued} waiting requests reached; retry after ${RETRY_AFTER_SECONDS} s`,
        { 'retry-after': String(RETRY_AFTER_SECONDS) },
      );
    }
    try {
      return await limit(work);
    } finally {
      // Forget idle districts, so the map holds only districts with requests under way.
      if (limit.activeCount === 0 && limit.pendingCount === 0 && districts.get(tenantId) === limit) districts.delete(tenantId);
    }
  };
}
