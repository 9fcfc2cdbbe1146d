/**
 * Straight at the students database as the application role, inside a tenant transaction exactly as the
 * kit opens one: probes through constraints, RETURNING, ON CONFLICT, COPY, TRUNCATE, settings, statistics
 * and errors. Every probe either is refused with the exact PostgreSQL error or sees only its own district.
 */
import { randomUUID } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import type pg from 'pg';
import { to as copyTo, from as copyFrom } from 'pg-copy-streams';
import { describe, expect } from 'vitest';
import { inTenantTransaction } from '../../tenancy/tenant-transaction.ts';
import { attack, expectOnlyTenant, NORTH, SOUTH, EAST, type Battery } from './harness.ts';

const NEW_STUDENT = `insert into student (tenant_id, id, first_name, last_name, grade, school_id) values ($1, $2, 'Probe', 'Probe', 1, gen_random_uuid())`;

interface PgError {
  code: string;
  message: string;
  detail?: string;
}

export function databaseAttacks(battery: Battery): void {
  let app: pg.Client | undefined;
  const appClient = async () => (app ??= await battery.platform.connect(battery.platform.databases.students!.appUrl));
  const southStudent = () => battery.rows[SOUTH]!.students[0]!;

  /** Runs `work` in a transaction for `tenantId` (as tenancy.ts does), then commits or rolls back. */
  async function inTenant<T>(tenantId: string | null, work: (client: pg.Client) => Promise<T>, end: 'commit' | 'rollback' = 'rollback'): Promise<T> {
    const client = await appClient();
    await client.query('begin');
    try {
      if (tenantId) await client.query("select set_config('app.current_tenant', $1, true)", [tenantId]);
      const result = await work(client);
      await client.query(end);
      return result;
    } catch (error) {
      await client.query('rollback');
      throw error;
    }
  }
  const failure = (promise: Promise<unknown>) =>
    promise.then(
      () => expect.unreachable('the statement should have failed'),
      (error: PgError) => ({ code: error.code, message: error.message, detail: error.detail }),
    );
  const rlsViolation = { code: '42501', message: 'new row violates row-level security policy for table "student"', detail: undefined };

  describe('database side channels', () => {
    attack("unique-violation probe: inserting another district's exact key is refused by RLS, not by the key", async () => {
      expect(await failure(inTenant(NORTH, (c) => c.query(NEW_STUDENT, [SOUTH, southStudent()])))).toEqual(rlsViolation);
    });

    attack("unique-violation probe: another district's id under the caller's own district collides with nothing", async () => {
      const rows = await inTenant(NORTH, async (c) => {
        await c.query(NEW_STUDENT, [NORTH, southStudent()]);
        return (await c.query('select tenant_id from student where id = $1', [southStudent()])).rows;
      });
      expectOnlyTenant(rows);
      expect(rows).toHaveLength(1);
    });

    attack('foreign-key existence probe: another district\'s student and a random id fail identically', async () => {
      const enroll = (studentId: string) =>
        failure(inTenant(NORTH, (c) => c.query(`insert into enrollment (tenant_id, student_id, school_id, start_date) values ($1, $2, gen_random_uuid(), '2026-09-01')`, [NORTH, studentId]), 'commit'));
      const expected = { code: '23503', message: 'insert or update on table "enrollment" violates foreign key constraint "enrollment_student_fk"', detail: 'Key is not present in table "student".' };
      expect(await enroll(southStudent())).toEqual(expected);
      expect(await enroll(randomUUID())).toEqual(expected);
    });

    attack("RETURNING from an UPDATE aimed at another district's rows returns nothing", async () => {
      const result = await inTenant(NORTH, (c) => c.query(`update student set first_name = first_name where tenant_id = $1 or id = $2 returning *`, [SOUTH, southStudent()]));
      expectOnlyTenant(result.rows);
      expect(result.rowCount).toBe(0);
    });

    attack('DELETE … RETURNING is refused: the application role holds no DELETE (it would allow LOCK … ACCESS EXCLUSIVE)', async () => {
      expect(await failure(inTenant(NORTH, (c) => c.query('delete from student returning tenant_id, id')))).toEqual({ code: '42501', message: 'permission denied for table student', detail: undefined });
    });

    attack("INSERT … ON CONFLICT DO UPDATE against another district's key is refused", async () => {
      const sql = `${NEW_STUDENT} on conflict (tenant_id, id) do update set first_name = 'Hijacked' returning *`;
      expect(await failure(inTenant(NORTH, (c) => c.query(sql, [SOUTH, southStudent()])))).toEqual(rlsViolation);
    });

    attack("INSERT … ON CONFLICT DO NOTHING against another district's key is refused", async () => {
      expect(await failure(inTenant(NORTH, (c) => c.query(`${NEW_STUDENT} on conflict do nothing returning *`, [SOUTH, southStudent()])))).toEqual(rlsViolation);
    });

    attack("COPY … TO exports only the caller's rows", async () => {
      const text = await inTenant(NORTH, async (c) => {
        let out = '';
        await pipeline(c.query(copyTo('copy student (tenant_id, id) to stdout')), new Writable({ write: (chunk, _enc, done) => ((out += chunk), done()) }));
        return out;
      });
      const rows = text.trim().split('\n').map((line) => ({ tenant_id: line.split('\t')[0]! }));
      expectOnlyTenant(rows);
      expect(rows).toHaveLength(battery.rows[NORTH]!.students.length);
    });

    attack('COPY … FROM into a tenant table is refused', async () => {
      const error = await failure(inTenant(NORTH, (c) => pipeline(async function* () { yield `${SOUTH}\t${randomUUID()}\tX\tY\t1\t\\N\t${randomUUID()}\t2026-01-01\n`; }, c.query(copyFrom('copy student from stdin')))));
      expect(error).toEqual({ code: '0A000', message: 'COPY FROM not supported with row-level security', detail: undefined });
    });

    attack('TRUNCATE is refused', async () => {
      expect(await failure(inTenant(NORTH, (c) => c.query('truncate student')))).toEqual({ code: '42501', message: 'permission denied for table student', detail: undefined });
    });

    attack('LOCK TABLE … ACCESS EXCLUSIVE (which would stall every district) is refused', async () => {
      expect(await failure(inTenant(NORTH, (c) => c.query('lock table student in access exclusive mode nowait')))).toEqual({ code: '42501', message: 'permission denied for table student', detail: undefined });
    });

    attack("pg_stat_activity shows no text of another district's statement in flight (its values are interpolated into it)", async () => {
      const { orm } = battery.platform.subgraphs.students!;
      const appRole = battery.platform.databases.students!.appRole;
      // South Ridge's request, with its tenant id in the statement text as the ORM sends every value.
      const sleeping = inTenantTransaction(orm, SOUTH, (em) => em.execute('select pg_sleep(2), ? as probe', [SOUTH]));
      const client = await appClient();
      let seen: { state: string; query: string } | undefined;
      for (const deadline = Date.now() + 1800; !seen; ) {
        seen = (await client.query(`select state, query from pg_stat_activity where usename = $1 and wait_event = 'PgSleep'`, [appRole])).rows[0];
        if (!seen && Date.now() > deadline) throw new Error("South Ridge's statement never showed up in pg_stat_activity");
      }
      await sleeping;
      expect(seen).toEqual({ state: 'disabled', query: '' });
    });

    attack('turning row_security off makes queries fail instead of bypassing policies', async () => {
      const error = await failure(inTenant(NORTH, async (c) => {
        await c.query('set local row_security = off');
        return c.query('select tenant_id from student');
      }));
      expect(error).toEqual({ code: '42501', message: 'query would be affected by row-level security policy for table "student"', detail: undefined });
    });

    attack('SET ROLE to the owner is refused', async () => {
      const owner = `${battery.platform.config.prefix}_owner`;
      expect(await failure(inTenant(NORTH, (c) => c.query(`set role ${owner}`)))).toEqual({ code: '42501', message: `permission denied to set role "${owner}"`, detail: undefined });
    });

    attack('no tenant set: reads see nothing and writes are refused', async () => {
      const rows = await inTenant(null, async (c) => (await c.query('select tenant_id from student')).rows);
      expect(rows).toEqual([]);
      expect(await failure(inTenant(null, (c) => c.query(NEW_STUDENT, [SOUTH, randomUUID()])))).toEqual(rlsViolation);
    });

    attack('SQL text as the tenant setting is a uuid syntax error, never a predicate', async () => {
      const error = await failure(inTenant(`${NORTH}' or '1'='1`, (c) => c.query('select tenant_id from student')));
      expect(error).toEqual({ code: '22P02', message: `invalid input syntax for type uuid: "${NORTH}' or '1'='1"`, detail: undefined });
    });

    attack("an error-raising WHERE clause cannot probe another district's rows (policy runs first)", async () => {
      // Would divide by zero on any row of South Ridge if user conditions ran before the policy.
      const result = await inTenant(NORTH, (c) => c.query('select tenant_id from student where 1 / (case when tenant_id = $1 then 0 else 1 end) = 1', [SOUTH]));
      expectOnlyTenant(result.rows);
      expect(result.rowCount).toBe(battery.rows[NORTH]!.students.length);
    });

    attack('planner statistics (pg_stats) of tenant tables are hidden from the application role', async () => {
      const owner = await battery.platform.connect(battery.platform.databases.students!.ownerUrl);
      await owner.query('analyze student');
      expect((await owner.query(`select count(*)::int as n from pg_stats where tablename = 'student'`)).rows[0].n).toBeGreaterThan(0);
      const rows = await inTenant(NORTH, async (c) => (await c.query(`select attname, most_common_vals::text from pg_stats where tablename = 'student'`)).rows);
      expect(rows).toEqual([]);
    });

    attack('a failed statement, then the next request on the same connection, sees only its own district', async () => {
      const { orm } = battery.platform.subgraphs.students!;
      const pid = async (em: Parameters<Parameters<typeof inTenantTransaction>[2]>[0]) => (await em.execute<{ pid: number }[]>('select pg_backend_pid() as pid'))[0]!.pid;
      let failedOn = 0;
      const error = await failure(
        inTenantTransaction(orm, SOUTH, async (em) => {
          failedOn = await pid(em);
          await em.execute('select 1 / 0');
        }),
      );
      expect(error).toMatchObject({ code: '22012', message: expect.stringContaining('division by zero') });
      const next = await inTenantTransaction(orm, EAST, async (em) => ({
        pid: await pid(em),
        rows: await em.execute<{ tenant_id: string }[]>('select tenant_id from student'),
      }));
      expect(next.pid).toBe(failedOn);
      expectOnlyTenant(next.rows, EAST);
      expect(next.rows).toHaveLength(battery.rows[EAST]!.students.length);
      // Outside any tenant transaction the same connection carries no tenant at all.
      const leftover = await orm.em.fork().execute<{ tenant: string | null; pid: number }[]>('select app.current_tenant_id() as tenant, pg_backend_pid() as pid');
      expect(leftover).toEqual([{ tenant: null, pid: failedOn }]);
    });
  });
}
