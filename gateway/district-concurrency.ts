/**
 * One district's requests share the gateway fairly with everyone else's: at most `maxInFlight` of them run at
 * once, `maxQueued` more wait their turn (in arrival order), and past that the gateway answers 429 with
 * Retry-After at once, before Apollo does any work. A flood from one district then costs the others a few
 * requests' worth of CPU, not a queue of hundreds. Per gateway process (in memory).
 */
import type { DistrictConcurrency } from '../config/config.ts';
import { HttpError } from '../http/server.ts';

export const RETRY_AFTER_SECONDS = 1;

interface District {
  running: number;
  /** Resolves the next waiting request's turn; a finished request hands its place straight to it. */
  waiting: (() => void)[];
}

export function createDistrictConcurrency(limits: DistrictConcurrency) {
  // Only districts with requests under way: an idle one is forgotten.
  const districts = new Map<string, District>();
  return async function runForDistrict<T>(tenantId: string, work: () => Promise<T>): Promise<T> {
    let district = districts.get(tenantId);
    if (!district) districts.set(tenantId, (district = { running: 0, waiting: [] }));
    if (district.running + district.waiting.length >= limits.maxInFlight + limits.maxQueued) {
      throw new HttpError(
        429,
        'TOO_MANY_REQUESTS',
        `District concurrency limit of ${limits.maxInFlight} running and ${limits.maxQueued} waiting requests reached; retry after ${RETRY_AFTER_SECONDS} s`,
        { 'retry-after': String(RETRY_AFTER_SECONDS) },
      );
    }
    if (district.running < limits.maxInFlight) district.running++;
    else await new Promise<void>((turn) => district.waiting.push(turn));
    try {
      return await work();
    } finally {
      const next = district.waiting.shift();
      if (next) next();
      else if (--district.running === 0) districts.delete(tenantId);
    }
  };
}
