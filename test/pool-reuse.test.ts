/** A pool of two connections per subgraph serves 1,200 concurrent requests from three districts without mixing them. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_DISTRICTS } from '../dev/seed.ts';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';

const REQUESTS = 1200;
let platform: TestPlatform;
beforeAll(async () => {
  // The gateway, three subgraphs and this test share one Node thread here, so the burst takes a while:
  // keep the district status cached through it (the status gate has tests of its own). Every request of the
  // burst runs at once, past the gateway's per-district concurrency limit (test/abuse covers that limit).
  platform = await startTestPlatform({ poolSize: 2, districtStatusTtlMs: 120_000, districtConcurrency: { maxInFlight: REQUESTS, maxQueued: 0 } });
});
afterAll(() => platform?.stop());

const QUERY = `{ district { id } students(first: 30) { edges { node { id } } } sections { students { id } } }`;

describe('pool reuse', () => {
  it('every response holds only its own district rows', async () => {
    const tokens = new Map(await Promise.all(DEMO_DISTRICTS.map(async (d) => [d.tenantId, await platform.token(d.slug)] as const)));
    const ownStudents = new Map<string, Set<string>>();
    for (const d of DEMO_DISTRICTS) {
      const { body } = await platform.graphql({ query: QUERY.replace('first: 30', 'first: 100') }, { token: tokens.get(d.tenantId) });
      ownStudents.set(d.tenantId, new Set(body.data.students.edges.map((e: any) => e.node.id)));
    }

    const responses = await Promise.all(
      Array.from({ length: REQUESTS }, async (_, i) => {
        const tenantId = DEMO_DISTRICTS[i % DEMO_DISTRICTS.length]!.tenantId;
        const { status, body } = await platform.graphql({ query: QUERY }, { token: tokens.get(tenantId) });
        return { tenantId, status, body };
      }),
    );

    let checkedRows = 0;
    for (const { tenantId, status, body } of responses) {
      expect(status).toBe(200);
      expect(body.errors).toBeUndefined();
      expect(body.data.district.id).toBe(tenantId);
      const own = ownStudents.get(tenantId)!;
      const seen = [...body.data.students.edges.map((e: any) => e.node.id), ...body.data.sections.flatMap((s: any) => s.students.map((st: any) => st.id))];
      for (const id of seen) expect(own.has(id)).toBe(true);
      checkedRows += seen.length;
    }
    expect(checkedRows).toBeGreaterThan(REQUESTS * 20);
    // The subgraphs really ran on two connections each.
    const { rows } = await (await platform.connect(platform.adminUrl)).query<{ count: string }>(
      'select count(*) from pg_stat_activity where usename = $1',
      [platform.databases.students!.appRole],
    );
    expect(Number(rows[0]!.count)).toBeLessThanOrEqual(2);
  }, 120_000);
});
