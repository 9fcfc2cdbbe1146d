/** A pool of two connections per subgraph serves 1,200 concurrent requests from three districts without mixing them. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_DATABASE_FAULTS } from '../config/config.ts';
import { DEMO_DISTRICTS } from '../dev/seed.ts';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';

const REQUESTS = 1200;
let platform: TestPlatform;
beforeAll(async () => {
  // The gateway, three subgraphs and this test share one Node thread here, so the burst takes a while:
  // keep the district status cached through it (the status gate has tests of its own). Every request of the
  // burst runs at once, past the gateway's per-district concurrency limit (test/abuse covers that limit).
  platform = await startTestPlatform({
    poolSize: 2,
    districtStatusTtlMs: 120_000,
    districtConcurrency: { maxInFlight: REQUESTS, maxQueued: 0 },
    // The burst queues on purpose for two connections: no request may give up waiting for one (DB_ACQUIRE_TIMEOUT_MS).
    databaseFaults: { ...DEFAULT_DATABASE_FAULTS, acquireTimeoutMs: 120_000 },
  });
});
afterAll(() => platform?.stop());

const QUERY = `{ district { id } students(first: 30) { edges { node { id } } } sections { students { id } } }`;

describe('pool reuse', () => {
  it('every response holds only its own district rows, on at most two connections per subgraph', async () => {
    const tokens = new Map(await Promise.all(DEMO_DISTRICTS.map(async (d) => [d.tenantId, await platform.token(d.slug)] as const)));
    // Each district's students, read as the owner: the expectation does not come from the gateway under test.
    const owner = await platform.connect(platform.databases.students!.ownerUrl);
    const ownStudents = new Map<string, Set<string>>();
    for (const d of DEMO_DISTRICTS) {
      const { rows } = await owner.query<{ id: string }>('select id from student where tenant_id = $1', [d.tenantId]);
      expect(rows.length).toBeGreaterThan(0);
      ownStudents.set(d.tenantId, new Set(rows.map((r) => r.id)));
    }

    // While the burst runs, sample how many connections each application role holds.
    const admin = await platform.connect(platform.adminUrl);
    const appRoles = Object.values(platform.databases).map((db) => db.appRole);
    const peak = new Map(appRoles.map((role) => [role, 0]));
    let bursting = true;
    const sampling = (async () => {
      while (bursting) {
        const { rows } = await admin.query<{ role: string; n: number }>(
          'select usename as role, count(*)::int as n from pg_stat_activity where usename = any($1) group by 1',
          [appRoles],
        );
        for (const { role, n } of rows) peak.set(role, Math.max(peak.get(role)!, n));
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();

    const responses = await Promise.all(
      Array.from({ length: REQUESTS }, async (_, i) => {
        const tenantId = DEMO_DISTRICTS[i % DEMO_DISTRICTS.length]!.tenantId;
        const { status, body } = await platform.graphql({ query: QUERY }, { token: tokens.get(tenantId) });
        return { tenantId, status, body };
      }),
    ).finally(() => {
      bursting = false;
    });
    await sampling;

    let checkedRows = 0;
    for (const { tenantId, status, body } of responses) {
      expect(status).toBe(200);
      expect(body.errors).toBeUndefined();
      expect(body.data.district.id).toBe(tenantId);
      const own = ownStudents.get(tenantId)!;
      const seen = [
        ...body.data.students.edges.map((e: any) => e.node.id),
        ...body.data.sections.flatMap((s: any) => s.students.map((st: any) => st.id)),
      ];
      for (const id of seen) expect(own.has(id)).toBe(true);
      checkedRows += seen.length;
    }
    expect(checkedRows).toBeGreaterThan(REQUESTS * 20);
    // The subgraphs really ran on their pools of two: some connection was seen, never more than two.
    for (const role of appRoles) {
      expect(peak.get(role), role).toBeGreaterThanOrEqual(1);
      expect(peak.get(role), role).toBeLessThanOrEqual(2);
    }
  }, 120_000);
});
