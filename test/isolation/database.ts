/**
 * Straight at every tenant table of every registered service's database (found in the catalog, so a new
 * subgraph's tables are attacked too), as the application role, inside a tenant transaction exactly as
 * tenancy/tenant-transaction.ts opens one: probes through constraints, RETURNING, ON CONFLICT, COPY,
 * TRUNCATE, settings, statistics and errors. Every probe either is refused with the exact PostgreSQL error
 * or sees only its own district.
 */
import { randomUUID } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import type pg from 'pg';
import { to as copyTo, from as copyFrom } from 'pg-copy-streams';
import { describe, expect } from 'vitest';
import { OPERATOR_ONLY_TABLES } from '../../database/database.ts';
import { inTenantTransaction } from '../../tenancy/tenant-transaction.ts';
import { waitFor } from '../support/wait.ts';
import { ownerClient, qualified, quote, type TenantTable } from '../support/tenant-tables.ts';
import { attack, expectOnlyTenant, NORTH, SOUTH, EAST, type Battery } from './harness.ts';

interface PgError {
  code: string;
  message: string;
  detail?: string;
}

type Row = Record<string, unknown>;

const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => expect.unreachable('the statement should have failed'),
    (error: PgError) => ({ code: error.code, message: error.message, detail: error.detail }),
  );

export function databaseAttacks(battery: Battery): void {
  const appClients = new Map<string, pg.Client>();
  const appClient = async (service: string) => {
    if (!appClients.has(service)) appClients.set(service, await battery.platform.connect(battery.platform.databases[service]!.appUrl));
    return appClients.get(service)!;
  };
  const owner = (service: string) => ownerClient(battery.platform, service);

  /** Runs `work` as the service's application role in a transaction for `tenantId` (as tenancy does), then commits or rolls back. */
  async function inTenant<T>(
    service: string,
    tenantId: string | null,
    work: (client: pg.Client) => Promise<T>,
    end: 'commit' | 'rollback' = 'rollback',
  ): Promise<T> {
    const client = await appClient(service);
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

  /** One whole row of a district, read as the owner. */
  async function rowOf(table: TenantTable, tenantId: string): Promise<Row> {
    const { rows } = await (
      await owner(table.service)
    ).query<{ row: Row }>(`select to_jsonb(t) as row from ${quote(table.name)} t where tenant_id = $1 order by 1 limit 1`, [tenantId]);
    expect(rows, `${qualified(table)} holds no row of ${tenantId}`).toHaveLength(1);
    return rows[0]!.row;
  }
  /** INSERT of whole rows given as JSON, through the table's own row type: no column is named by hand. */
  const insertRow = (table: TenantTable, suffix = '') =>
    `insert into ${quote(table.name)} select * from jsonb_populate_record(null::${quote(table.name)}, $1::jsonb) ${suffix}`;
  const keyColumns = (table: TenantTable) => ['tenant_id', ...table.key].map(quote).join(', ');
  const rlsViolation = (table: TenantTable) => ({
    code: '42501',
    message: `new row violates row-level security policy for table "${table.name}"`,
    detail: undefined,
  });
  const northCount = (table: TenantTable) => battery.keys(NORTH, table.name).length;

  describe('database side channels, on every tenant table', () => {
    attack('the catalog holds tenant tables in every registered service database', async () => {
      expect(new Set(battery.tables.map((t) => t.service))).toEqual(new Set(Object.keys(battery.platform.databases)));
    });

    for (const table of battery.tables) {
      const name = qualified(table);
      describe(name, () => {
        attack(`${name}: holds rows of every demo district, so each probe below has something to find`, async () => {
          for (const tenantId of [NORTH, SOUTH, EAST])
            expect(battery.keys(tenantId, table.name).length, `rows of ${tenantId}`).toBeGreaterThan(0);
        });

        attack(`${name}: row-level security is enabled and forced, with a policy`, async () => {
          expect({ enabled: table.rlsEnabled, forced: table.rlsForced, policies: table.policies > 0 }).toEqual({
            enabled: true,
            forced: true,
            policies: true,
          });
        });

        if (OPERATOR_ONLY_TABLES.has(table.name)) {
          // The operator CLI's own table (the audit trail): the application role may not even read its own district's rows.
          attack(`${name}: the application role holds no privilege on it: reading, writing and copying it are refused`, async () => {
            const denied = { code: '42501', message: `permission denied for table ${table.name}`, detail: undefined };
            const own = await rowOf(table, NORTH);
            const statements: [string, unknown[]][] = [
              [`select tenant_id from ${quote(table.name)}`, []],
              [insertRow(table), [{ ...own, ...(table.key.includes('id') ? { id: randomUUID() } : {}) }]],
              [`update ${quote(table.name)} set tenant_id = tenant_id`, []],
              [`delete from ${quote(table.name)}`, []],
            ];
            for (const [sql, values] of statements)
              expect(await failure(inTenant(table.service, NORTH, (c) => c.query(sql, values))), sql).toEqual(denied);
            const copied = await failure(
              inTenant(table.service, NORTH, (c) =>
                pipeline(
                  c.query(copyTo(`copy ${quote(table.name)} (tenant_id) to stdout`)),
                  new Writable({ write: (_c, _e, done) => done() }),
                ),
              ),
            );
            expect(copied).toEqual(denied);
          });
          return;
        }

        attack(`${name}: inserting another district's exact row (its key included) is refused by RLS, not by the key`, async () => {
          const south = await rowOf(table, SOUTH);
          expect(await failure(inTenant(table.service, NORTH, (c) => c.query(insertRow(table), [south])))).toEqual(rlsViolation(table));
        });

        if (table.key.length) {
          attack(`${name}: another district's key under the caller's own district collides with nothing`, async () => {
            const south = await rowOf(table, SOUTH);
            const where = table.key.map((column, i) => `${quote(column)}::text = $${i + 1}`).join(' and ');
            const rows = await inTenant(table.service, NORTH, async (c) => {
              await c.query(insertRow(table), [{ ...south, tenant_id: NORTH }]);
              return (
                await c.query(
                  `select tenant_id from ${quote(table.name)} where ${where}`,
                  table.key.map((column) => String(south[column])),
                )
              ).rows;
            });
            expectOnlyTenant(rows);
            expect(rows).toHaveLength(1);
          });
        }

        attack(`${name}: INSERT … ON CONFLICT DO UPDATE against another district's key is refused`, async () => {
          const south = await rowOf(table, SOUTH);
          // Through a column the application role may update (outside the key); a table with none is refused sooner.
          const column = table.columns.find((c) => c !== 'tenant_id' && !table.key.includes(c));
          const set = column ? `${quote(column)} = excluded.${quote(column)}` : 'tenant_id = excluded.tenant_id';
          const sql = insertRow(table, `on conflict (${keyColumns(table)}) do update set ${set} returning *`);
          const refused = column
            ? rlsViolation(table)
            : { code: '42501', message: `permission denied for table ${table.name}`, detail: undefined };
          expect(await failure(inTenant(table.service, NORTH, (c) => c.query(sql, [south])))).toEqual(refused);
        });

        attack(`${name}: INSERT … ON CONFLICT DO NOTHING against another district's key is refused`, async () => {
          const south = await rowOf(table, SOUTH);
          expect(
            await failure(inTenant(table.service, NORTH, (c) => c.query(insertRow(table, 'on conflict do nothing returning *'), [south]))),
          ).toEqual(rlsViolation(table));
        });

        attack(
          `${name}: an UPDATE aimed at another district's rows changes nothing and returns nothing; the key is not updatable`,
          async () => {
            // The application role may update only columns outside the primary key (tenant_id never).
            const updatable = table.columns.filter((column) => column !== 'tenant_id' && !table.key.includes(column));
            if (updatable.length) {
              const column = quote(updatable[0]!);
              const result = await inTenant(table.service, NORTH, (c) =>
                c.query(`update ${quote(table.name)} set ${column} = ${column} where tenant_id = $1 returning *`, [SOUTH]),
              );
              expectOnlyTenant(result.rows);
              expect(result.rowCount).toBe(0);
            }
            const moved = await failure(
              inTenant(table.service, NORTH, (c) => c.query(`update ${quote(table.name)} set tenant_id = $1 returning *`, [SOUTH])),
            );
            expect(moved).toEqual({ code: '42501', message: `permission denied for table ${table.name}`, detail: undefined });
          },
        );

        attack(`${name}: DELETE is refused (the application role holds no DELETE; it would allow LOCK … ACCESS EXCLUSIVE)`, async () => {
          const error = await failure(
            inTenant(table.service, NORTH, (c) => c.query(`delete from ${quote(table.name)} returning tenant_id`)),
          );
          expect(error).toEqual({ code: '42501', message: `permission denied for table ${table.name}`, detail: undefined });
        });

        attack(`${name}: LOCK TABLE … ACCESS EXCLUSIVE (which would stall every district) is refused`, async () => {
          const error = await failure(
            inTenant(table.service, NORTH, (c) => c.query(`lock table ${quote(table.name)} in access exclusive mode nowait`)),
          );
          expect(error).toEqual({ code: '42501', message: `permission denied for table ${table.name}`, detail: undefined });
        });

        attack(`${name}: COPY … TO exports only the caller's rows`, async () => {
          const text = await inTenant(table.service, NORTH, async (c) => {
            let out = '';
            await pipeline(
              c.query(copyTo(`copy ${quote(table.name)} (tenant_id) to stdout`)),
              new Writable({ write: (chunk, _enc, done) => ((out += chunk), done()) }),
            );
            return out;
          });
          const rows = text
            .trim()
            .split('\n')
            .filter(Boolean)
            .map((line) => ({ tenant_id: line }));
          expectOnlyTenant(rows);
          expect(rows).toHaveLength(northCount(table));
        });

        attack(`${name}: COPY … FROM is refused`, async () => {
          const error = await failure(
            inTenant(table.service, NORTH, (c) =>
              pipeline(
                async function* () {
                  yield `${SOUTH}\n`;
                },
                c.query(copyFrom(`copy ${quote(table.name)} (tenant_id) from stdin`)),
              ),
            ),
          );
          expect(error).toEqual({ code: '0A000', message: 'COPY FROM not supported with row-level security', detail: undefined });
        });

        attack(`${name}: TRUNCATE is refused`, async () => {
          expect(await failure(inTenant(table.service, NORTH, (c) => c.query(`truncate ${quote(table.name)}`)))).toEqual({
            code: '42501',
            message: `permission denied for table ${table.name}`,
            detail: undefined,
          });
        });

        attack(`${name}: turning row_security off makes queries fail instead of bypassing policies`, async () => {
          const error = await failure(
            inTenant(table.service, NORTH, async (c) => {
              await c.query('set local row_security = off');
              return c.query(`select tenant_id from ${quote(table.name)}`);
            }),
          );
          expect(error).toEqual({
            code: '42501',
            message: `query would be affected by row-level security policy for table "${table.name}"`,
            detail: undefined,
          });
        });

        attack(`${name}: no tenant set: reads see nothing and writes are refused`, async () => {
          const rows = await inTenant(table.service, null, async (c) => (await c.query(`select tenant_id from ${quote(table.name)}`)).rows);
          expect(rows).toEqual([]);
          const south = await rowOf(table, SOUTH);
          expect(await failure(inTenant(table.service, null, (c) => c.query(insertRow(table), [south])))).toEqual(rlsViolation(table));
        });

        attack(`${name}: SQL text as the tenant setting is a uuid syntax error, never a predicate`, async () => {
          const error = await failure(
            inTenant(table.service, `${NORTH}' or '1'='1`, (c) => c.query(`select tenant_id from ${quote(table.name)}`)),
          );
          expect(error).toEqual({ code: '22P02', message: `invalid input syntax for type uuid: "${NORTH}' or '1'='1"`, detail: undefined });
        });

        attack(`${name}: an error-raising WHERE clause cannot probe another district's rows (policy runs first)`, async () => {
          // Would divide by zero on any row of South Ridge if user conditions ran before the policy.
          const result = await inTenant(table.service, NORTH, (c) =>
            c.query(`select tenant_id from ${quote(table.name)} where 1 / (case when tenant_id = $1 then 0 else 1 end) = 1`, [SOUTH]),
          );
          expectOnlyTenant(result.rows);
          expect(result.rowCount).toBe(northCount(table));
        });

        attack(`${name}: planner statistics (pg_stats) are hidden from the application role`, async () => {
          const tableOwner = await owner(table.service);
          await tableOwner.query(`analyze ${quote(table.name)}`);
          expect(
            (await tableOwner.query(`select count(*)::int as n from pg_stats where schemaname = 'public' and tablename = $1`, [table.name]))
              .rows[0].n,
          ).toBeGreaterThan(0);
          const rows = await inTenant(
            table.service,
            NORTH,
            async (c) => (await c.query(`select attname, most_common_vals::text from pg_stats where tablename = $1`, [table.name])).rows,
          );
          expect(rows).toEqual([]);
        });
      });
    }

    attack("pg_stat_activity shows no text of another district's statement in flight (its values are interpolated into it)", async () => {
      const service = battery.tables[0]!.service;
      const { orm } = battery.platform.subgraphs[service]!;
      const appRole = battery.platform.databases[service]!.appRole;
      // South Ridge's request, with its tenant id in the statement text as the ORM sends every value.
      const sleeping = inTenantTransaction(orm, SOUTH, (em) => em.execute('select pg_sleep(2), ? as probe', [SOUTH]));
      const client = await appClient(service);
      const seen = await waitFor(
        "South Ridge's statement in pg_stat_activity",
        async () =>
          (
            await client.query<{ state: string; query: string }>(
              `select state, query from pg_stat_activity where usename = $1 and wait_event = 'PgSleep'`,
              [appRole],
            )
          ).rows[0],
        { timeoutMs: 1800, intervalMs: 20 },
      );
      await sleeping;
      expect(seen).toEqual({ state: 'disabled', query: '' });
    });

    attack('every composite foreign key is found in the catalog and leads with tenant_id', async () => {
      expect(battery.foreignKeys.length).toBeGreaterThan(0);
      for (const fk of battery.foreignKeys)
        expect({ fk: fk.name, columns: fk.columns[0], referenced: fk.referencedColumns[0] }).toEqual({
          fk: fk.name,
          columns: 'tenant_id',
          referenced: 'tenant_id',
        });
    });

    for (const fk of battery.foreignKeys) {
      attack(
        `${fk.service}.${fk.table} → ${fk.references}: another district's key and a random one fail the foreign key identically`,
        async () => {
          const child = battery.tables.find((t) => t.service === fk.service && t.name === fk.table)!;
          const parent = battery.tables.find((t) => t.service === fk.service && t.name === fk.references)!;
          const [column, referencedColumn] = [fk.columns[1]!, fk.referencedColumns[1]!];
          const own = await rowOf(child, NORTH);
          const foreign = await rowOf(parent, SOUTH);
          // A fresh key for the copy, unless the key is the reference itself.
          const probe = (target: unknown) => ({
            ...own,
            ...(child.key.includes('id') && column !== 'id' ? { id: randomUUID() } : {}),
            [column]: target,
          });
          const insert = (row: Row) => failure(inTenant(fk.service, NORTH, (c) => c.query(insertRow(child), [row]), 'commit'));
          const expected = {
            code: '23503',
            message: `insert or update on table "${fk.table}" violates foreign key constraint "${fk.name}"`,
            detail: `Key is not present in table "${fk.references}".`,
          };
          expect(await insert(probe(foreign[referencedColumn]))).toEqual(expected);
          expect(await insert(probe(randomUUID()))).toEqual(expected);
        },
      );
    }
  });

  describe('database connections', () => {
    attack('SET ROLE to the owner is refused', async () => {
      const ownerRole = `${battery.platform.config.prefix}_owner`;
      for (const service of Object.keys(battery.platform.databases)) {
        expect(await failure(inTenant(service, NORTH, (c) => c.query(`set role ${ownerRole}`)))).toEqual({
          code: '42501',
          message: `permission denied to set role "${ownerRole}"`,
          detail: undefined,
        });
      }
    });

    for (const service of Object.keys(battery.platform.databases)) {
      attack(`${service}: a failed statement, then the next request on the same connection, sees only its own district`, async () => {
        const { orm } = battery.platform.subgraphs[service]!;
        const table = battery.tables.find((t) => t.service === service)!;
        const pid = async (em: Parameters<Parameters<typeof inTenantTransaction>[2]>[0]) =>
          (await em.execute<{ pid: number }[]>('select pg_backend_pid() as pid'))[0]!.pid;
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
          rows: await em.execute<{ tenant_id: string }[]>(`select tenant_id from ${quote(table.name)}`),
        }));
        expect(next.pid).toBe(failedOn);
        expectOnlyTenant(next.rows, EAST);
        expect(next.rows).toHaveLength(battery.keys(EAST, table.name).length);
        // Outside any tenant transaction the same connection carries no tenant at all.
        const leftover = await orm.em
          .fork()
          .execute<{ tenant: string | null; pid: number }[]>('select app.current_tenant_id() as tenant, pg_backend_pid() as pid');
        expect(leftover).toEqual([{ tenant: null, pid: failedOn }]);
      });
    }
  });
}
