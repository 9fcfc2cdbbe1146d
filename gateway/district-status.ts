/**
 * Only ACTIVE districts are served. The gateway asks the directory subgraph (the registry entry with
 * `"directory": true`) for the caller's district status (with a tenant context like any other fetch) and keeps the answer for `ttlMs`. After that, one
 * refresh runs while requests are still answered from the previous status for at most another `ttlMs`,
 * so a burst of traffic never waits on (or times out behind) its own status lookup; past 2 × `ttlMs`
 * requests wait for a fresh answer. A status change therefore takes effect within 2 × `ttlMs`. A failed
 * lookup leaves the previous answer in place; a request with no answer young enough to serve gets a 503.
 * lru-cache does the bookkeeping: `fetchMethod` runs the lookup (one at a time per district), `allowStale`
 * serves the previous answer while it runs, `noDeleteOnFetchRejection` keeps that answer when it fails.
 * With Redis, `forget` drops a district's answer when its status changes (district-status-subscription.ts), so its
 * next request asks again; a lookup under way when it is forgotten is abandoned (its waiting requests get the 503).
 */
import { randomUUID } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { HttpError } from '../http/server.ts';
import type { SubgraphHttp } from './subgraph-http.ts';
import { TENANT_CONTEXT_HEADER, type TenantContext } from '../tenancy/tenant-context.ts';

type Sign = (context: TenantContext, audience: string) => Promise<string>;
type Status = 'ACTIVE' | 'SUSPENDED' | 'MIGRATING' | 'UNKNOWN';

const forbidden = (message: string) => new HttpError(403, 'FORBIDDEN', message);
/** Districts whose status is remembered at once; the least recently asked one goes first. */
const MAX_REMEMBERED_DISTRICTS = 100_000;

interface CheckedStatus {
  status: Status;
  /** performance.now() when the lookup that produced `status` started. */
  checkedAt: number;
}

export function createDistrictGate(options: {
  directory: string;
  directoryUrl: () => string;
  post: SubgraphHttp['post'];
  sign: Sign;
  ttlMs: number;
  /** Told how each check was answered: a fresh answer, a stale one while a refresh runs, or a wait for the directory (metrics). */
  onLookup?: (result: 'hit' | 'stale' | 'miss') => void;
}) {
  const { ttlMs } = options;

  async function fetchStatus(tenantId: string): Promise<Status> {
    const context = await options.sign({ tenantId, subject: 'gateway', requestId: randomUUID() }, options.directory);
    const response = await options.post(
      options.directoryUrl(),
      { 'content-type': 'application/json', [TENANT_CONTEXT_HEADER]: context },
      JSON.stringify({ query: '{ district { status } }' }),
      5000,
    );
    const body = (await response.json()) as { data?: { district?: { status: Status } }; errors?: { extensions?: { code?: string } }[] };
    if (body.data?.district) return body.data.district.status;
    if (body.errors?.some((e) => e.extensions?.code === 'NOT_FOUND')) return 'UNKNOWN';
    throw new Error(`district status lookup failed with HTTP ${response.status}`);
  }

  const statuses = new LRUCache<string, CheckedStatus>({
    max: MAX_REMEMBERED_DISTRICTS,
    ttl: Math.max(1, ttlMs),
    noDeleteOnFetchRejection: true,
    fetchMethod: async (tenantId, _previous, { options: entry }) => {
      const checkedAt = performance.now();
      const status = await fetchStatus(tenantId);
      // Fresh for `ttlMs` from when the lookup started, not from when it answered (0 would mean "forever").
      entry.ttl = Math.max(1, checkedAt + ttlMs - performance.now());
      return { status, checkedAt };
    },
  });

  async function statusOf(tenantId: string): Promise<Status> {
    const previous = statuses.peek(tenantId, { allowStale: true });
    // Fresh (the common case): the answer `fetch` would give without a lookup, at less cost.
    if (previous !== undefined && ttlMs > 0 && performance.now() - previous.checkedAt < ttlMs) {
      options.onLookup?.('hit');
      return previous.status;
    }
    // Younger than 2 × TTL: served (past TTL, while one refresh runs). Older, or none: wait for a fresh answer.
    // At TTL 0 every request waits for a lookup (its own, or the one already running).
    const servable = previous !== undefined && performance.now() - previous.checkedAt < 2 * ttlMs;
    options.onLookup?.(servable ? 'stale' : 'miss');
    // Undefined when the lookup failed with nothing to serve, or was abandoned (its entry evicted meanwhile).
    const checked = await statuses.fetch(tenantId, { allowStale: servable, forceRefresh: ttlMs === 0 }).catch(() => undefined);
    if (!checked) throw new HttpError(503, 'SERVICE_UNAVAILABLE', 'district directory unavailable, try again');
    return checked.status;
  }

  async function assertActive(tenantId: string): Promise<void> {
    const status = await statusOf(tenantId);
    if (status === 'UNKNOWN') throw forbidden('district is not registered');
    if (status === 'SUSPENDED') throw forbidden('district is suspended');
    if (status === 'MIGRATING') throw forbidden('district is being migrated, try again later');
  }

  return Object.assign(assertActive, {
    /** Drops what is remembered of `tenantId`: its next request asks the directory. */
    forget: (tenantId: string) => void statuses.delete(tenantId),
    /** Drops every remembered status (when status changes may have been missed). */
    forgetAll: () => statuses.clear(),
  });
}

export type DistrictGate = ReturnType<typeof createDistrictGate>;
