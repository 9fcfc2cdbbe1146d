/**
 * The GraphQL-over-HTTP audit of the `graphql-http` package (`serverAudits`) against the running gateway, with a
 * valid token on every request: no MUST item may fail. The counts (ok / warn / notice / error) and every item that
 * is not ok are printed, for docs/errors.md and the closing note.
 */
import { serverAudits, type AuditResult } from 'graphql-http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform();
});
afterAll(() => platform?.stop());

describe('GraphQL over HTTP (graphql-http audit)', () => {
  it('passes every MUST item against the gateway', async () => {
    const token = await platform.token('north-valley');
    const audits = serverAudits({
      url: platform.gateway.url,
      fetchFn: (input: RequestInfo, init: RequestInit = {}) => {
        const headers = new Headers(init.headers);
        headers.set('authorization', `Bearer ${token}`);
        return fetch(input, { ...init, headers });
      },
    });
    expect(audits.length).toBeGreaterThan(50);
    // One after another: one district's requests beyond 2 running and 16 waiting would be answered 429.
    const results: AuditResult[] = [];
    for (const audit of audits) results.push(await audit.fn());
    const count = (status: AuditResult['status']) => results.filter((r) => r.status === status).length;
    const notOk = results.flatMap((r) => (r.status === 'ok' ? [] : [`${r.status} ${r.name}: ${r.reason}`]));
    console.log(
      `graphql-http audit: ${results.length} items, ${count('ok')} ok, ${count('warn')} warn, ${count('notice')} notice, ${count('error')} error`,
    );
    for (const line of notOk) console.log(`  ${line}`);
    expect(results.filter((r) => r.name.startsWith('MUST') && r.status !== 'ok')).toEqual([]);
    expect(count('error')).toBe(0);
  });
});
