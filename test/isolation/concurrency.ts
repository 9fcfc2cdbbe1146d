/** Districts interleaved on one pooled connection per subgraph, and requests cancelled mid-transaction. */
import { describe, expect } from 'vitest';
import { inTenantTransaction } from '../../tenancy/tenant-transaction.ts';
import { DEMO_DISTRICTS } from '../../dev/seed.ts';
import { waitFor } from '../support/wait.ts';
import { withEveryList } from '../support/graph.ts';
import { idsOf } from '../support/tenant-tables.ts';
import { attack, expectNoForeignData, expectOnlyTenant, NORTH, SOUTH, type Battery } from './harness.ts';

/** The district, the students' page, and every list every subgraph offers (read from the supergraph). */
const EVERYTHING = withEveryList(
  `{ district { id } students(first: 100) { edges { node { id school { id } } } } staff { id } sections { id students { id } } }`,
);

export function concurrencyAttacks(battery: Battery): void {
  /** Each district's response holds only its own ids (of any of its tables). */
  const expectOwnRows = (tenantId: string, text: string) => {
    const allowed = new Set([tenantId, ...idsOf(Object.values(battery.rows[tenantId]!).flat())]);
    const ids = text.match(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g) ?? [];
    expectOnlyTenant(
      ids.filter((id) => !allowed.has(id)).map((id) => ({ tenant_id: id })),
      tenantId,
    );
    if (tenantId === NORTH) expectNoForeignData(text);
  };

  describe('concurrency', () => {
    attack('30 interleaved requests of three districts on a one-connection pool each see only their own district', async () => {
      const order = Array.from({ length: 30 }, (_, i) => DEMO_DISTRICTS[i % 3]!);
      const results = await Promise.all(
        order.map((d) => battery.platform.as(d.slug, EVERYTHING).then((result) => ({ district: d, result }))),
      );
      for (const { district, result } of results) {
        expect(result.status).toBe(200);
        expect(result.body.errors).toBeUndefined();
        expect(result.body.data.district.id).toBe(district.tenantId);
        expect(result.body.data.students.edges).toHaveLength(battery.keys(district.tenantId, 'student').length);
        expectOwnRows(district.tenantId, result.text);
      }
    });

    attack('a statement cancelled mid-transaction leaves nothing behind for the next district on that connection', async () => {
      const { orm } = battery.platform.subgraphs.students!;
      const admin = await battery.platform.connect(battery.platform.adminUrl);
      const appRole = battery.platform.databases.students!.appRole;
      const sleeping = inTenantTransaction(orm, SOUTH, (em) => em.execute('select pg_backend_pid() as pid, pg_sleep(30)'));
      const settled = sleeping.then(
        () => expect.unreachable('the sleep should have been cancelled'),
        (error: { code: string; message: string }) => error,
      );
      const cancelled = await waitFor(
        'the sleeping statement to show in pg_stat_activity by its wait event (and be cancelled)',
        async () => {
          const { rows } = await admin.query<{ pid: number; sent: boolean }>(
            // The application role's sessions publish no query text (track_activities is off for it): found by wait event.
            `select pid, pg_cancel_backend(pid) as sent from pg_stat_activity where usename = $1 and wait_event = 'PgSleep'`,
            [appRole],
          );
          return rows[0]?.sent ? rows[0].pid : undefined;
        },
      );
      const error = await settled;
      expect(error).toMatchObject({ code: '57014', message: expect.stringContaining('canceling statement due to user request') });
      const next = await inTenantTransaction(orm, NORTH, async (em) => ({
        pid: (await em.execute<{ pid: number }[]>('select pg_backend_pid() as pid'))[0]!.pid,
        rows: await em.execute<{ tenant_id: string }[]>('select tenant_id from student'),
      }));
      expect(next.pid).toBe(cancelled);
      expectOnlyTenant(next.rows);
      expect(next.rows).toHaveLength(battery.keys(NORTH, 'student').length);
    });

    attack('requests aborted by the client mid-flight do not disturb the next requests of another district', async () => {
      const aborted = await Promise.all(
        Array.from({ length: 6 }, async () => {
          const controller = new AbortController();
          const pending = fetch(battery.platform.gateway.url, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${await battery.platform.token('south-ridge')}` },
            body: JSON.stringify({ query: EVERYTHING }),
            signal: controller.signal,
          });
          setTimeout(() => controller.abort(), 5);
          return pending.then(
            () => 'completed',
            (error: Error) => error.name,
          );
        }),
      );
      expect(aborted.filter((outcome) => outcome === 'AbortError').length).toBeGreaterThan(0);
      const results = await Promise.all(Array.from({ length: 6 }, () => battery.platform.as('north-valley', EVERYTHING)));
      for (const result of results) {
        expect(result.status).toBe(200);
        expect(result.body.errors).toBeUndefined();
        expectOwnRows(NORTH, result.text);
      }
    });
  });
}
