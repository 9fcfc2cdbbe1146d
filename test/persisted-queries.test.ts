/**
 * Automatic persisted queries are kept per district: a hash another district registered is unknown to the
 * caller (so it cannot learn which texts other districts send), and the caller's own hashes work for it.
 */
import { createHash, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TENANT_CONTEXT_HEADER, createTenantContextSigner } from '../tenancy/tenant-context.ts';
import { demo, startTestPlatform, type DemoSlug, type TestPlatform } from './support/platform.ts';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform();
});
afterAll(() => platform?.stop());

/** A text no one has sent before, and its APQ hash. */
const freshQuery = () => {
  const query = `query Probe_${randomUUID().replaceAll('-', '')} { district { name } }`;
  return { query, hash: createHash('sha256').update(query).digest('hex') };
};
const persisted = (hash: string) => ({ persistedQuery: { version: 1, sha256Hash: hash } });

/** Registers (with the text) or runs (hash alone) a persisted query as a district. */
async function send(tenant: DemoSlug, hash: string, query?: string) {
  const { body } = await platform.graphql({ query, extensions: persisted(hash) } as { query: string }, {
    token: await platform.token(tenant),
  });
  return body;
}

describe('automatic persisted queries at the gateway', () => {
  it('a hash South Ridge registered is unknown to North Valley (PERSISTED_QUERY_NOT_FOUND), and works for South Ridge', async () => {
    const { query, hash } = freshQuery();
    expect(await send('south-ridge', hash, query)).toEqual({ data: { district: { name: demo('south-ridge').name } } });
    // The cache works: South Ridge runs it by hash alone.
    expect(await send('south-ridge', hash)).toEqual({ data: { district: { name: demo('south-ridge').name } } });
    const north = await send('north-valley', hash);
    expect(north.data).toBeUndefined();
    expect(north.errors).toEqual([{ message: 'PersistedQueryNotFound', extensions: { code: 'PERSISTED_QUERY_NOT_FOUND' } }]);
  });

  it("North Valley's own registration of the same text works for North Valley, with North Valley's data", async () => {
    const { query, hash } = freshQuery();
    await send('south-ridge', hash, query);
    expect((await send('north-valley', hash)).errors?.[0]?.extensions?.code).toBe('PERSISTED_QUERY_NOT_FOUND');
    expect(await send('north-valley', hash, query)).toEqual({ data: { district: { name: demo('north-valley').name } } });
    expect(await send('north-valley', hash)).toEqual({ data: { district: { name: demo('north-valley').name } } });
  });
});

describe('automatic persisted queries at a subgraph', () => {
  it('are off: a hash is refused with PERSISTED_QUERY_NOT_SUPPORTED even under a valid context', async () => {
    const sign = await createTenantContextSigner(platform.keys.context.privateJwk);
    const { query, hash } = freshQuery();
    const context = () => sign({ tenantId: demo('north-valley').tenantId, subject: 'apq-test', requestId: randomUUID() }, 'districts');
    const { body } = await platform.graphql({ query, extensions: persisted(hash) } as { query: string }, {
      url: platform.subgraphs.districts!.url,
      headers: { [TENANT_CONTEXT_HEADER]: await context() },
    });
    expect(body.errors).toEqual([{ message: 'PersistedQueryNotSupported', extensions: { code: 'PERSISTED_QUERY_NOT_SUPPORTED' } }]);
  });
});
