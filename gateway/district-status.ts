/**
 * Only ACTIVE districts are served. The gateway asks the directory subgraph (the registry entry with
 * `"directory": true`) for the caller's district status (with a tenant context like any other fetch) and keeps the answer for `ttlMs`. After that, one
 * refresh runs while requests are still answered from the previous status for at most another `ttlMs`,
 * so a burst of traffic never waits on (or times out behind) its own status lookup; past 2 × `ttlMs`
 * requests wait for a fresh answer. A status change therefore takes effect within 2 × `ttlMs`.
 */
import { randomUUID } from 'node:crypto';
import { HttpError } from '../http/server.ts';
import type { SubgraphHttp } from './subgraph-http.ts';
import { TENANT_CONTEXT_HEADER, type TenantContext } from '../tenancy/tenant-context.ts';

type Sign = (context: TenantContext, audience: string) => Promise<string>;
type Status = 'ACTIVE' | 'SUSPENDED' | 'MIGRATING' | 'UNKNOWN';

const forbidden = (message: string) => new HttpError(403, 'FORBIDDEN', message);

export function createDistrictGate(options: { directory: string; directoryUrl: () => string; post: SubgraphHttp['post']; sign: Sign; ttlMs: number }) {
  interface Entry {
    status?: Status;
    /** When the lookup that produced `status` started. */
    checkedAt: number;
    refreshing?: Promise<Status>;
  }
  const cache = new Map<string, Entry>();

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

  /** One lookup at a time per district; a failed one leaves the previous answer in place. */
  function refresh(tenantId: string, entry: Entry): Promise<Status> {
    if (!entry.refreshing) {
      const startedAt = Date.now();
      entry.refreshing = fetchStatus(tenantId)
        .then((status) => {
          entry.status = status;
          entry.checkedAt = startedAt;
          return status;
        })
        .finally(() => {
          entry.refreshing = undefined;
        });
      entry.refreshing.catch(() => {});
    }
    return entry.refreshing;
  }

  async function statusOf(tenantId: string): Promise<Status> {
    let entry = cache.get(tenantId);
    if (!entry) cache.set(tenantId, (entry = { checkedAt: 0 }));
    const age = entry.status === undefined ? Infinity : Date.now() - entry.checkedAt;
    if (age < options.ttlMs) return entry.status!;
    const fresh = refresh(tenantId, entry);
    if (age < 2 * options.ttlMs) return entry.status!;
    return fresh.catch(() => {
      throw new HttpError(503, 'SERVICE_UNAVAILABLE', 'district directory unavailable, try again');
    });
  }

  return async function assertActive(tenantId: string): Promise<void> {
    const status = await statusOf(tenantId);
    if (status === 'UNKNOWN') throw forbidden('district is not registered');
    if (status === 'SUSPENDED') throw forbidden('district is suspended');
    if (status === 'MIGRATING') throw forbidden('district is being migrated, try again later');
  };
}
