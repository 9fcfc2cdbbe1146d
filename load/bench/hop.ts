/**
 * Figure 3: one operation through the gateway (caller JWT, district gate, planning, a signed context per
 * fetch) against the same operation straight to its subgraph with a valid signed context. Sequential and
 * interleaved over keep-alive connections, so both see the same machine at the same moment.
 */
import { randomUUID } from 'node:crypto';
import { Pool } from 'undici';
import type { JWK } from 'jose';
import { TENANT_CONTEXT_HEADER, createTenantContextSigner } from '../../tenancy/tenant-context.ts';
import { serviceOwning } from '../../config/registry.ts';
import { graphqlErrorCode, type DistrictTarget } from '../scenarios/scenario.ts';
import { summarize, type Summary } from './stats.ts';

export const HOP_QUERY = 'query Student($id: ID!) { student(id: $id) { id firstName lastName grade } }';
/** The subgraph that answers HOP_QUERY: the one holding the `student` table. */
export const HOP_SUBGRAPH = serviceOwning('student').name;

export interface HopResult {
  gateway: Summary;
  direct: Summary;
  p95Ratio: number;
}

async function post(pool: Pool, path: string, headers: Record<string, string>, body: string): Promise<void> {
  const response = await pool.request({ path, method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  const text = await response.body.text();
  const error = response.statusCode === 200 ? graphqlErrorCode(text) : `HTTP ${response.statusCode}`;
  if (error) throw new Error(`gateway-hop request failed: ${error}`);
}

export async function measureGatewayHop(options: {
  gatewayUrl: string;
  subgraphUrl: string;
  contextPrivateKey: JWK;
  districts: DistrictTarget[];
  iterations: number;
}): Promise<HopResult> {
  const sign = await createTenantContextSigner(options.contextPrivateKey);
  const gateway = new URL(options.gatewayUrl);
  const subgraph = new URL(options.subgraphUrl);
  const gatewayPool = new Pool(gateway.origin, { connections: 1 });
  const subgraphPool = new Pool(subgraph.origin, { connections: 1 });
  const timings = { gateway: [] as number[], direct: [] as number[] };
  const warmup = 300;
  try {
    for (let i = 0; i < options.iterations + warmup; i++) {
      const district = options.districts[i % options.districts.length]!;
      const ids = district.samples.studentId!;
      const body = JSON.stringify({ query: HOP_QUERY, variables: { id: ids[i % ids.length] } });
      let started = performance.now();
      await post(gatewayPool, gateway.pathname, { authorization: `Bearer ${district.token}` }, body);
      if (i >= warmup) timings.gateway.push(performance.now() - started);
      // The direct call signs its context inside the timing, as the gateway does for its fetch.
      started = performance.now();
      const context = await sign({ tenantId: district.tenantId, subject: 'bench', requestId: randomUUID() }, HOP_SUBGRAPH);
      await post(subgraphPool, subgraph.pathname, { [TENANT_CONTEXT_HEADER]: context }, body);
      if (i >= warmup) timings.direct.push(performance.now() - started);
    }
  } finally {
    await gatewayPool.close();
    await subgraphPool.close();
  }
  const result = { gateway: summarize(timings.gateway), direct: summarize(timings.direct) };
  return { ...result, p95Ratio: result.gateway.p95 / result.direct.p95 };
}
