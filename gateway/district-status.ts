/**
 * Only ACTIVE districts are served. The gateway asks the districts subgraph for the caller's district
 * status (with a tenant context like any other fetch) and keeps the answer for a few seconds, so a
 * status change (suspension, consolidation) takes effect within `ttlMs` without a lookup per request.
 */
import { randomUUID } from 'node:crypto';
import { HttpError } from '../subgraphs/kit/http.ts';
import type { SubgraphHttp } from './subgraph-http.ts';
import { TENANT_CONTEXT_HEADER, type TenantContext } from '../subgraphs/kit/tenant-context.ts';

type Sign = (context: TenantContext, audience: string) => Promise<string>;
type Status = 'ACTIVE' | 'SUSPENDED' | 'MIGRATING' | 'UNKNOWN';

const forbidden = (message: string) => new HttpError(403, 'FORBIDDEN', message);

export function createDistrictGate(options: { districtsUrl: () => string; post: SubgraphHttp['post']; sign: Sign; ttlMs: number }) {
  const cache = new Map<string, { status: Promise<Status>; expires: number }>();

  async function fetchStatus(tenantId: string): Promise<Status> {
    const context = await options.sign({ tenantId, subject: 'gateway', requestId: randomUUID() }, 'districts');
    const response = await options.post(
      options.districtsUrl(),
      { 'content-type': 'application/json', [TENANT_CONTEXT_HEADER]: context },
      JSON.stringify({ query: '{ district { status } }' }),
      5000,
    );
    const body = (await response.json()) as { data?: { district?: { status: Status } }; errors?: { extensions?: { code?: string } }[] };
    if (body.data?.district) return body.data.district.status;
    if (body.errors?.some((e) => e.extensions?.code === 'NOT_FOUND')) return 'UNKNOWN';
    throw new Error(`district status lookup failed with HTTP ${response.status}`);
  }

  return async function assertActive(tenantId: string): Promise<void> {
    const now = Date.now();
    let entry = cache.get(tenantId);
    if (!entry || entry.expires <= now) {
      entry = { status: fetchStatus(tenantId), expires: now + options.ttlMs };
      cache.set(tenantId, entry);
      // A failed lookup is not remembered: the next request asks again.
      entry.status.catch(() => cache.delete(tenantId));
    }
    const status = await entry.status.catch(() => {
      throw new HttpError(503, 'SERVICE_UNAVAILABLE', 'district directory unavailable, try again');
    });
    if (status === 'UNKNOWN') throw forbidden('district is not registered');
    if (status === 'SUSPENDED') throw forbidden('district is suspended');
    if (status === 'MIGRATING') throw forbidden('district is being migrated, try again later');
  };
}
