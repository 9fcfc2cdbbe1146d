/**
 * The fast read path: rows of a tenant table by key, as plain objects with the same property names and values
 * the entity path gives (MikroORM's own result mapper converts each row), without the query builder, entity
 * hydration, the identity map or change tracking. For read-only operations only: nothing read here is managed,
 * so nothing read here can be flushed.
 *
 * The SQL text is built once per entity, key property and shape from MikroORM's metadata (table and column names
 * quoted as identifiers); per request only values are added: the tenant filter's explicit `tenant_id = …` and the
 * keys, each validated as a UUID and quoted as a literal. The statement runs in the request's tenant transaction,
 * so row-level security applies to it as to every other.
 */
import { ReferenceKind, type EntityManager, type EntityMetadata, type EntityName } from '@mikro-orm/postgresql';
import pg from 'pg';
import { isUuid } from '../tenancy/tenant-context.ts';
import { TENANT_FILTER } from '../tenancy/tenant-table.ts';

type Row = Record<string, unknown>;

export interface ReadPage {
  limit: number;
  orderBy: Record<string, 'asc' | 'desc'>;
}

export interface PlainRead {
  /** The rows whose key property is one of `keys` (each a UUID), as the entity path would return them. */
  read(em: EntityManager, keys: readonly string[]): Promise<Row[]>;
}

const reads = new WeakMap<EntityMetadata, Map<string, PlainRead>>();

const literal = (value: string): string => {
  // The one check between a value and the SQL text: only UUIDs are ever added to it.
  if (!isUuid(value)) throw new Error('plain read: refusing a value that is not a UUID');
  return pg.escapeLiteral(value);
};

/** The tenant of the entity manager's tenant filter (forkForTenant sets it); fails closed without one. */
function tenantOf(em: EntityManager): string {
  const { tenantId } = em.getFilterParams<{ tenantId?: string }>(TENANT_FILTER) ?? {};
  if (!isUuid(tenantId)) throw new Error('plain read without a tenant: open the entity manager with forkForTenant()');
  return tenantId;
}

/** The plain read of `entity` by `property` (one row per key, or the first `page.limit` rows per key in `page.orderBy` order). */
export function plainReads(em: EntityManager, entity: EntityName<object>, property: string, page?: ReadPage): PlainRead {
  const meta = em.getMetadata().get(entity);
  const cacheKey = `${property}.${page ? `${page.limit}.${JSON.stringify(page.orderBy)}` : ''}`;
  let byShape = reads.get(meta);
  if (!byShape) reads.set(meta, (byShape = new Map<string, PlainRead>()));
  let read = byShape.get(cacheKey);
  if (!read) {
    read = buildRead(em, meta, property, page);
    byShape.set(cacheKey, read);
  }
  return read;
}

function buildRead(em: EntityManager, meta: EntityMetadata, property: string, page: ReadPage | undefined): PlainRead {
  if (!meta.filters[TENANT_FILTER]) throw new Error(`plain read: ${meta.className} is not a tenant table`);
  const platform = em.getPlatform();
  const quote = (identifier: string) => platform.quoteIdentifier(identifier);
  const column = (name: string) => {
    const prop = meta.properties[name];
    if (!prop || prop.persist === false || prop.fieldNames?.length !== 1)
      throw new Error(`plain read: ${meta.className}.${name} is no column`);
    return quote(prop.fieldNames[0]!);
  };
  const columns = meta.props
    .filter((prop) => prop.persist !== false && prop.kind === ReferenceKind.SCALAR && prop.fieldNames?.length === 1)
    .map((prop) => quote(prop.fieldNames[0]!))
    .join(', ');
  const table = quote(meta.tableName);
  const key = column(property);
  const tenant = column('tenantId');
  const where = (tenantId: string, keys: readonly string[]) =>
    `${tenant} = ${literal(tenantId)} and ${key} in (${keys.map(literal).join(', ')})`;
  let sql: (tenantId: string, keys: readonly string[]) => string;
  if (!page) sql = (tenantId, keys) => `select ${columns} from ${table} where ${where(tenantId, keys)}`;
  else {
    // As MikroORM's `_partitionLimit`: each key's rows numbered in order, the first `limit` of each kept.
    if (!Number.isInteger(page.limit) || page.limit < 1) throw new Error('plain read: the page limit must be a positive integer');
    const order = Object.entries(page.orderBy)
      .map(([name, direction]) => `${column(name)} ${direction === 'desc' ? 'desc' : 'asc'}`)
      .join(', ');
    const rowNumber = quote('__rn');
    sql = (tenantId, keys) =>
      `select ${columns} from (select ${columns}, row_number() over (partition by ${key} order by ${order}) as ${rowNumber} ` +
      `from ${table} where ${where(tenantId, keys)}) as ${quote('e0')} where ${rowNumber} <= ${page.limit} order by ${rowNumber}`;
  }
  return {
    async read(em, keys) {
      const connection = em.getConnection();
      const rows = await connection.execute<Row[]>(sql(tenantOf(em), keys), [], 'all', em.getTransactionContext());
      const driver = em.getDriver();
      return rows.map((row) => driver.mapResult(row, meta) as Row);
    },
  };
}
