/**
 * The fast read path: rows of a tenant table by key, as plain objects with the same property names and values
 * the entity path gives (MikroORM's own result mapper converts each row), without the query builder, entity
 * hydration, the identity map or change tracking. For read-only operations only: nothing read here is managed,
 * so nothing read here can be flushed.
 *
 * The SQL text is built once per entity, key property and shape from MikroORM's metadata (table and column names
 * quoted as identifiers); per request only values are added: the tenant filter's explicit `tenant_id = …` and the
 * keys, each validated as a UUID and quoted by MikroORM as on the entity path. The statement runs in the request's tenant transaction,
 * so row-level security applies to it as to every other.
 */
import { Cursor, ReferenceKind, type EntityManager, type EntityMetadata, type EntityName } from '@mikro-orm/postgresql';
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
  // The table's alias as MikroORM's query builder names it (`s0` for Student), so both paths' SQL reads alike.
  const alias = quote(`${meta.className.charAt(0).toLowerCase()}0`);
  const column = (name: string) => {
    const prop = meta.properties[name];
    if (!prop || prop.persist === false || prop.fieldNames?.length !== 1)
      throw new Error(`plain read: ${meta.className}.${name} is no column`);
    return `${alias}.${quote(prop.fieldNames[0]!)}`;
  };
  const columns = meta.props
    .filter((prop) => prop.persist !== false && prop.kind === ReferenceKind.SCALAR && prop.fieldNames?.length === 1)
    .map((prop) => quote(prop.fieldNames[0]!))
    .join(', ');
  const table = quote(meta.tableName);
  const key = column(property);
  const tenant = column('tenantId');
  // `?` placeholders: MikroORM quotes each value into the text (connection.execute), as on the entity path.
  const where = (keys: readonly string[]) => `${tenant} = ? and ${key} in (${keys.map(() => '?').join(', ')})`;
  let sql: (keys: readonly string[]) => string;
  if (!page) sql = (keys) => `select ${columns} from ${table} as ${alias} where ${where(keys)}`;
  else {
    // As MikroORM's `_partitionLimit`: each key's rows numbered in order, the first `limit` of each kept.
    if (!Number.isInteger(page.limit) || page.limit < 1) throw new Error('plain read: the page limit must be a positive integer');
    const order =
      Object.entries(page.orderBy)
        .map(([name, direction]) => `${column(name)} ${direction === 'desc' ? 'desc' : 'asc'}`)
        .join(', ') || key; // no order given: by the key itself, as MikroORM does
    const rowNumber = quote('__rn');
    sql = (keys) =>
      `select ${columns} from (select ${columns}, row_number() over (partition by ${key} order by ${order}) as ${rowNumber} ` +
      `from ${table} as ${alias} where ${where(keys)}) as ${alias} where ${rowNumber} <= ${page.limit} order by ${rowNumber}`;
  }
  return {
    async read(em, keys) {
      const connection = em.getConnection();
      // The one check between a value and the SQL text: only UUIDs are ever added to it.
      if (!keys.every(isUuid)) throw new Error('plain read: refusing a key that is not a UUID');
      const rows = await connection.execute<Row[]>(sql(keys), [tenantOf(em), ...keys], 'all', em.getTransactionContext());
      const driver = em.getDriver();
      return rows.map((row) => driver.mapResult(row, meta) as Row);
    },
  };
}

/** An `after` that is not a cursor this API returned for the same order. */
export class CursorRefused extends Error {}

export interface PlainPageOptions {
  /** Equality conditions on scalar properties, besides the tenant filter's (each value already validated by the caller). */
  where: Record<string, string | number>;
  /** Ascending only: the keyset condition is one row comparison over these columns, in this order. */
  orderBy: Record<string, 'asc'>;
  first: number;
  after?: string;
}

export interface PlainPage {
  items: Row[];
  hasNextPage: boolean;
  endCursor: string | null;
  /** The cursor of an item, as MikroORM's `Cursor` writes it (so either path reads the other's cursors). */
  cursorOf(row: Row): string;
}

type PageRead = (em: EntityManager, options: PlainPageOptions) => Promise<PlainPage>;
const pages = new WeakMap<EntityMetadata, Map<string, PageRead>>();

/**
 * A keyset page of a tenant table (what `em.findByCursor` with `first`/`after` answers), as plain rows: the first
 * `first` rows in `orderBy` order after the cursor's row, plus whether more follow. Values reach the SQL text only
 * through MikroORM's own value quoting (`connection.execute` with `?` parameters), as on the entity path.
 */
export function plainPage<T extends object>(em: EntityManager, entity: EntityName<T>, options: PlainPageOptions): Promise<PlainPage> {
  const meta = em.getMetadata().get(entity) as EntityMetadata;
  const cacheKey = `${Object.keys(options.where).join(',')}|${JSON.stringify(options.orderBy)}`;
  let byShape = pages.get(meta);
  if (!byShape) pages.set(meta, (byShape = new Map<string, PageRead>()));
  let page = byShape.get(cacheKey);
  if (!page) {
    page = buildPage(em, meta, Object.keys(options.where), options.orderBy);
    byShape.set(cacheKey, page);
  }
  return page(em, options);
}

function buildPage(em: EntityManager, meta: EntityMetadata, whereKeys: string[], orderBy: Record<string, 'asc'>): PageRead {
  if (!meta.filters[TENANT_FILTER]) throw new Error(`plain page: ${meta.className} is not a tenant table`);
  const platform = em.getPlatform();
  const quote = (identifier: string) => platform.quoteIdentifier(identifier);
  const propOf = (name: string) => {
    const prop = meta.properties[name];
    if (!prop || prop.persist === false || prop.kind !== ReferenceKind.SCALAR || prop.fieldNames?.length !== 1)
      throw new Error(`plain page: ${meta.className}.${name} is no column`);
    return prop;
  };
  const columns = meta.props
    .filter((prop) => prop.persist !== false && prop.kind === ReferenceKind.SCALAR && prop.fieldNames?.length === 1)
    .map((prop) => quote(prop.fieldNames[0]!))
    .join(', ');
  const orderProps = Object.entries(orderBy).map(([name, direction]) => {
    if (direction !== 'asc') throw new Error('plain page: ascending orders only');
    return propOf(name);
  });
  const orderColumns = orderProps.map((prop) => quote(prop.fieldNames[0]!));
  const conditions = [
    `${quote(propOf('tenantId').fieldNames[0]!)} = ?`,
    ...whereKeys.map((name) => `${quote(propOf(name).fieldNames[0]!)} = ?`),
  ];
  const head = `select ${columns} from ${quote(meta.tableName)} where ${conditions.join(' and ')}`;
  const keyset = ` and (${orderColumns.join(', ')}) > (${orderColumns.map(() => '?').join(', ')})`;
  const tail = ` order by ${orderColumns.map((column) => `${column} asc`).join(', ')} limit ?`;
  const cursorOf = (row: Row) => Cursor.for(meta, row, orderBy);

  /**
   * The cursor's values. A cursor that does not decode to one value per order column is refused as input; one that
   * does but holds a value of the wrong type (a forged cursor: a non-UUID id, say) fails as the database would fail
   * on it, as an internal error, before any SQL is sent.
   */
  const decode = (after: string): unknown[] => {
    let values: unknown;
    try {
      values = Cursor.decode(after);
    } catch {
      throw new CursorRefused('not a cursor');
    }
    if (!Array.isArray(values) || values.length !== orderProps.length) throw new CursorRefused('not a cursor of this order');
    values.forEach((value, i) => {
      const prop = orderProps[i]!;
      const valid =
        prop.columnTypes[0] === 'uuid'
          ? isUuid(value)
          : prop.runtimeType === 'number'
            ? typeof value === 'number' && Number.isFinite(value)
            : typeof value === 'string';
      if (!valid) throw new Error(`plain page: a cursor value for ${meta.className}.${prop.name} is not of its column's type`);
    });
    return values;
  };

  return async (em, { where, first, after }) => {
    if (!Number.isInteger(first) || first < 1) throw new Error('plain page: first must be a positive integer');
    const params: unknown[] = [tenantOf(em), ...whereKeys.map((name) => where[name])];
    let sql = head;
    if (after !== undefined) {
      sql += keyset;
      params.push(...decode(after));
    }
    sql += tail;
    params.push(first + 1);
    const rows = await em.getConnection().execute<Row[]>(sql, params, 'all', em.getTransactionContext());
    const driver = em.getDriver();
    const items = rows.slice(0, first).map((row) => driver.mapResult(row, meta) as Row);
    return {
      items,
      hasNextPage: rows.length > first,
      endCursor: items.length ? cursorOf(items[items.length - 1]!) : null,
      cursorOf,
    };
  };
}
