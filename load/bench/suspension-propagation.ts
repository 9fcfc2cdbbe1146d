/**
 * Suspension propagation across gateway replicas with Redis (REDIS_URL): how long from publishing a district's
 * status change (after its SUSPENDED status is committed in the directory database) until every given gateway refuses
 * the district's next request with 403. Each gateway is asked back to back, so a delay includes up to one request.
 * Before each suspension every gateway has served the district (its ACTIVE status remembered), so only the published
 * change can explain a refusal before the gateways' status TTL.
 */
import type pg from 'pg';
import type { Redis } from 'ioredis';
import { setDistrictStatus } from '../../tools/onboarding.ts';
import { publishDistrictStatusChange } from '../../tenancy/district-status-events.ts';
import { summarize, type Summary } from './stats.ts';

const STATUS_QUERY = JSON.stringify({ query: '{ district { status } }' });

export interface PropagationOptions {
  gatewayUrls: string[];
  /** A valid caller token for `tenantId`. */
  token: string;
  tenantId: string;
  /** Connected as the districts database's owner. */
  directoryOwner: pg.ClientBase;
  redis: Pick<Redis, 'publish'>;
  rounds?: number;
  /** Per gateway and round: a gateway that has not answered as expected by then fails the measurement. */
  timeoutMs?: number;
}

async function statusOf(url: string, token: string): Promise<number> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: STATUS_QUERY,
  });
  await response.arrayBuffer();
  return response.status;
}

/** Asks `url` back to back until it answers `expected`; resolves with performance.now() of that answer. */
async function untilAnswers(url: string, token: string, expected: number, timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if ((await statusOf(url, token)) === expected) return performance.now();
    if (performance.now() > deadline) throw new Error(`${url} did not answer ${expected} within ${timeoutMs} ms`);
  }
}

/** Suspends and resumes `tenantId` `rounds` times; the delays (ms) until every gateway refused it, and their summary. */
export async function measureSuspensionPropagation(options: PropagationOptions): Promise<{ delaysMs: number[]; summary: Summary }> {
  const { gatewayUrls, token, tenantId, directoryOwner, redis, rounds = 20, timeoutMs = 5000 } = options;
  const delaysMs: number[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      await Promise.all(gatewayUrls.map((url) => untilAnswers(url, token, 200, timeoutMs)));
      await setDistrictStatus(directoryOwner, tenantId, 'suspended');
      const published = performance.now();
      await publishDistrictStatusChange(redis, tenantId);
      const refusedAt = await Promise.all(gatewayUrls.map((url) => untilAnswers(url, token, 403, timeoutMs)));
      delaysMs.push(Math.max(...refusedAt) - published);
      await setDistrictStatus(directoryOwner, tenantId, 'active');
      await publishDistrictStatusChange(redis, tenantId);
    }
  } finally {
    await setDistrictStatus(directoryOwner, tenantId, 'active');
    await publishDistrictStatusChange(redis, tenantId).catch(() => 0);
  }
  return { delaysMs, summary: summarize(delaysMs) };
}
