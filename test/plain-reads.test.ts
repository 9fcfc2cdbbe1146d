/**
 * The fast read path (subgraph-server/plain-reads.ts) returns, for the same keys, field for field what the entity
 * path (MikroORM `em.find`, as a mutation's loaders use it) returns: same rows, same order, same values and types.
 */
import { randomUUID } from 'node:crypto';
import { ReferenceKind, type EntityMetadata } from '@mikro-orm/postgresql';
import { escapeIdentifier } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CursorRefused, plainPage, plainReads } from '../subgraph-server/plain-reads.ts';
import { TENANT_FILTER } from '../tenancy/tenant-table.ts';
import { inTenantTransaction } from '../tenancy/tenant-transaction.ts';
import { demo, startTestPlatform, type TestPlatform } from './support/platform.ts';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform();
});
afterAll(() => platform?.stop());

const north = demo('north-valley').tenantId;
const south = demo('south-ridge').tenantId;
const scalarProps = (meta: EntityMetadata) => meta.props.filter((prop) => prop.kind === ReferenceKind.SCALAR && prop.persist !== false);

/** As the loaders ask the entity path (subgraph-server/loaders.ts); `_partitionLimit` is not in MikroORM's public typings. */
const entityOptions = (property: string, page?: { limit: number; orderBy: Record<string, 'asc' | 'desc'> }) => {
  const options = page ? { orderBy: page.orderBy, _partitionLimit: { partitionBy: property, limit: page.limit } } : {};
  return options;
};

describe('fast read path', () => {
  it('returns field for field what the entity path returns, for every key of every tenant table', async () => {
    let compared = 0;
    for (const [service, subgraph] of Object.entries(platform.subgraphs)) {
      const owner = await platform.connect(platform.databases[service]!.ownerUrl);
      const tables = [...subgraph.orm.getMetadata().getAll().values()].filter((meta) => meta.filters[TENANT_FILTER]);
      expect(tables.length, service).toBeGreaterThan(0);
      for (const meta of tables) {
        // Every uuid column a loader may key on; tenant_id only where it is the whole key (the district row).
        const uuidKeys = scalarProps(meta).filter(
          (prop) => prop.columnTypes[0] === 'uuid' && (prop.name !== 'tenantId' || meta.primaryKeys.length === 1),
        );
        for (const prop of uuidKeys) {
          const column = escapeIdentifier(prop.fieldNames[0]!);
          const table = escapeIdentifier(meta.tableName);
          const keysOf = async (tenantId: string) =>
            (
              await owner.query<{ key: string }>(`select distinct ${column}::text as key from ${table} where tenant_id = $1`, [tenantId])
            ).rows.map((row) => row.key);
          const own = await keysOf(north);
          if (own.length === 0) continue; // a table the demo seed leaves empty for this district
          // Another district's keys and an unknown one: neither path may return anything for them.
          const keys = [...own, ...(await keysOf(south)).slice(0, 3), randomUUID()];
          const shapes = [
            { name: 'one', page: undefined },
            {
              name: 'many',
              // Newest key first, so a key's page is not simply its first rows in storage order.
              page: {
                limit: 2,
                orderBy: Object.fromEntries(meta.primaryKeys.filter((k) => k !== 'tenantId').map((k) => [k, 'desc' as const])),
              },
            },
          ];
          for (const { name, page } of shapes) {
            const { plain, entities } = await inTenantTransaction(subgraph.orm, north, async (em) => ({
              plain: await plainReads(em, meta.class, prop.name, page).read(em, keys),
              entities: await em.find(meta.class, { [prop.name]: { $in: keys } }, entityOptions(prop.name, page)),
            }));
            const fields = (row: object) =>
              Object.fromEntries(scalarProps(meta).map((p) => [p.name, (row as Record<string, unknown>)[p.name]]));
            expect(plain.length, `${meta.className}.${prop.name} ${name}`).toBeGreaterThan(0);
            expect(plain.every((row) => row.tenantId === north)).toBe(true);
            const byKey = (rows: object[]) => [...rows].map(fields).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
            // `one` reads every row of the keys, in no defined order; `many` in the page's order per key.
            if (page) expect(plain.map(fields), `${meta.className}.${prop.name} ${name}`).toStrictEqual(entities.map(fields));
            else expect(byKey(plain), `${meta.className}.${prop.name} ${name}`).toStrictEqual(byKey(entities));
            compared += plain.length;
          }
        }
      }
    }
    expect(compared).toBeGreaterThan(100);
  });

  it('pages students as em.findByCursor does: same rows, cursors and next-page flags, page after page', async () => {
    const { orm } = platform.subgraphs.students!;
    const meta = [...orm.getMetadata().getAll().values()].find((m) => m.className === 'Student')!;
    const orderBy = { lastName: 'asc', firstName: 'asc', id: 'asc' } as const;
    const fields = (row: object) => Object.fromEntries(scalarProps(meta).map((p) => [p.name, (row as Record<string, unknown>)[p.name]]));
    let pages = 0;
    for (const where of [{}, { grade: 3 }] as Record<string, number>[]) {
      let after: string | undefined;
      for (let page = 0; page < 4; page++) {
        const { plain, entity } = await inTenantTransaction(orm, north, async (em) => ({
          plain: await plainPage(em, meta.class, { where, orderBy, first: 4, after }),
          entity: await em.findByCursor(meta.class, { where, first: 4, after, orderBy, includeCount: false }),
        }));
        expect(plain.items.length, JSON.stringify(where)).toBeGreaterThan(0);
        expect(plain.items.map(fields)).toStrictEqual(entity.items.map(fields));
        expect(plain.items.map(plain.cursorOf)).toStrictEqual(entity.items.map((item) => entity.from(item)));
        expect({ hasNextPage: plain.hasNextPage, endCursor: plain.endCursor }).toStrictEqual({
          hasNextPage: entity.hasNextPage,
          endCursor: entity.endCursor,
        });
        pages++;
        if (!plain.hasNextPage) break;
        after = plain.endCursor!;
      }
    }
    expect(pages).toBeGreaterThan(2);
  });

  it('refuses a page cursor that is not one of this order, and fails one holding a value of the wrong type, before any SQL', async () => {
    const { orm } = platform.subgraphs.students!;
    const meta = [...orm.getMetadata().getAll().values()].find((m) => m.className === 'Student')!;
    const orderBy = { lastName: 'asc', firstName: 'asc', id: 'asc' } as const;
    const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const page = (after: string) =>
      inTenantTransaction(orm, north, (em) => plainPage(em, meta.class, { where: {}, orderBy, first: 4, after }));
    for (const after of ['not a cursor', encode(['a', 'b']), encode({ lastName: 'a' })])
      await expect(page(after)).rejects.toBeInstanceOf(CursorRefused);
    for (const after of [encode(['a', 'b', "x' or true --"]), encode([1, 'b', randomUUID()])])
      await expect(page(after)).rejects.toThrow(/not of its column's type/);
  });

  it('refuses a key that is not a UUID and a tenant table read without a tenant', async () => {
    const { orm } = platform.subgraphs.students!;
    const meta = [...orm.getMetadata().getAll().values()].find((m) => m.className === 'Student')!;
    await expect(inTenantTransaction(orm, north, (em) => plainReads(em, meta.class, 'id').read(em, ["x') or true --"]))).rejects.toThrow(
      /not a UUID/,
    );
    const em = orm.em.fork();
    await expect(plainReads(em, meta.class, 'id').read(em, [randomUUID()])).rejects.toThrow(/without a tenant/);
  });
});
