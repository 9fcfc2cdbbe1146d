/** What the abuse tests share: the attack shapes, a signed way straight into a subgraph, and counters of subgraph work. */
import { randomUUID } from 'node:crypto';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';
import { DEFAULT_OPERATION_LIMITS } from '../../config/config.ts';
import { createTenantContextSigner, TENANT_CONTEXT_HEADER } from '../../tenancy/tenant-context.ts';
import type { GraphQLResult, TestPlatform } from '../support/platform.ts';

export const LIMITS = DEFAULT_OPERATION_LIMITS;

/**
 * The School → students → Student → school cycle, `levels` object levels deep under `root`, ending in `id`
 * (GraphQL depth levels + 1). Through the gateway the root is `schools`; inside the students subgraph it is an
 * `_entities` School, which is exactly what the gateway would send it.
 */
export function fanOut(levels: number, root: 'schools' | '_entities', first?: number): string {
  const page = first === undefined ? '' : `(first: ${first})`;
  let selection = 'id';
  for (let level = levels; level >= 2; level--) selection = `${level % 2 === 0 ? `students${page}` : 'school'} { ${selection} }`;
  return root === 'schools'
    ? `{ schools${page} { ${selection} } }`
    : `query ($r: [_Any!]!) { _entities(representations: $r) { ... on School { ${selection} } } }`;
}

/** A chain of `count` fragments, each spreading the next twice: 2^count fields if expanded naively. */
export function fragmentBomb(count: number): string {
  const fragments = Array.from({ length: count }, (_, i) =>
    i === count - 1 ? `fragment F${i} on Query { district { id } }` : `fragment F${i} on Query { ...F${i + 1} ...F${i + 1} }`,
  );
  return `{ ...F0 } ${fragments.join(' ')}`;
}

/** `levels` nested School/Student levels written as one fragment per level (depth hidden in fragments). */
export function deepFragments(levels: number): string {
  const fragments = Array.from({ length: levels }, (_, i) => {
    const type = i % 2 === 0 ? 'School' : 'Student';
    const next = i % 2 === 0 ? 'students' : 'school';
    return i === levels - 1 ? `fragment L${i} on ${type} { id }` : `fragment L${i} on ${type} { ${next} { ...L${i + 1} } }`;
  });
  return `{ schools { ...L0 } } ${fragments.join(' ')}`;
}

/** Counts HTTP requests the subgraph servers receive (Node's http server channel): proof that no fetch happened. */
export function subgraphRequestCounter(platform: TestPlatform) {
  const ports = new Set(Object.values(platform.subgraphs).map((s) => s.port));
  let count = 0;
  const listener = (message: unknown) => {
    const { server } = message as { server: Server; request: IncomingMessage };
    if (ports.has((server.address() as AddressInfo).port)) count++;
  };
  subscribe('http.server.request.start', listener);
  return { count: () => count, stop: () => unsubscribe('http.server.request.start', listener) };
}

/** POSTs straight to a subgraph with a context the gateway's key signed for the district (a stolen-context attacker). */
export async function directCaller(platform: TestPlatform) {
  const sign = await createTenantContextSigner(platform.keys.context.privateJwk);
  return async (service: string, tenantId: string, body: unknown): Promise<GraphQLResult> => {
    const context = await sign({ tenantId, subject: 'abuse', requestId: randomUUID() }, service);
    const response = await fetch(platform.subgraphs[service]!.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', [TENANT_CONTEXT_HEADER]: context },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: JSON.parse(text), text };
  };
}

/** A refusal for a limit: 400, the one code, a message naming the limit and its allowed value. */
export function expectLimitRefusal(result: GraphQLResult, limit: RegExp, allowed?: number): void {
  expect(result.status, result.text.slice(0, 300)).toBe(400);
  expect(result.body.errors).toHaveLength(1);
  expect(result.body.errors![0]!.extensions?.code).toBe('OPERATION_LIMIT_EXCEEDED');
  expect(result.body.errors![0]!.message).toMatch(limit);
  if (allowed !== undefined) expect(result.body.errors![0]!.message).toContain(` ${allowed}`);
  expect(result.body.data).toBeUndefined();
}

/** Served within the limits: 200, data, no error, a body under the response cap. */
export function expectServed(result: GraphQLResult, maxResponseBytes: number = LIMITS.maxResponseBytes): void {
  expect(result.status, result.text.slice(0, 300)).toBe(200);
  expect(result.body.errors).toBeUndefined();
  expect(result.body.data).toBeTruthy();
  expect(Buffer.byteLength(result.text)).toBeLessThanOrEqual(maxResponseBytes);
}
