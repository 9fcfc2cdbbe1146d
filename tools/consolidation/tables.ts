/**
 * How each legacy table lands in a service database, in foreign-key order, and the SQL both commands
 * derive from it: the COPY source query, and the per-row key and fingerprint that reconcile sums.
 *
 * Ids: a legacy serial id becomes the UUID `<18 hex digits of md5(tenant:table)><legacy id as 12 hex>`
 * (version nibble 8, RFC 9562 "custom"), computed in SQL on the source side. The md5 part is a constant of
 * the statement (PostgreSQL folds it once), so the per-row cost is one to_hex; md5 per row was measured at
 * ~2.6 µs per call on PostgreSQL 15 with OpenSSL 3, which alone would cap copy and reconcile far below
 * their goals. The same expression maps every foreign key, so references stay consistent with no lookup
 * table; reruns produce the same ids (resumable, idempotent); reconcile recomputes it on the source; and
 * the target's key order is the legacy id order (appends to the primary-key index, key-range bisection).
 * Why UUIDs at all: no sequence shared across tenants (a side channel on other districts' activity) and
 * no id that names another district's row: the prefix differs per tenant and table. The tenant id is the
 * one value in these statements (COPY takes no parameters): it must be a UUID, and is quoted by pg's escapeLiteral.
 *
 * The mapping names target tables, not services: each target table goes to the registered service whose
 * migrations create it (schema/subgraphs.json), and the district itself to the directory service. A mapped
 * table that no registered service creates stops every command before it connects anywhere.
 */
import { escapeLiteral } from 'pg';
import { directoryService, readRegistry, serviceOwning } from '../../config/registry.ts';
import { isUuid } from '../../tenancy/tenant-context.ts';

/** A registered service name. */
export type Service = string;

export interface ColumnMapping {
  /** Target column. */
  name: string;
  /** Target type as `format_type()` prints it; also the cast that makes both sides print values alike. */
  type: string;
  /** Expression over the legacy row that yields the target value, given the tenant id as a quoted SQL literal. */
  source: (tenant: string) => string;
  /** The same value, already of the target type, where that is cheaper than casting `source` (mapped ids). */
  sourceTyped?: (tenant: string) => string;
}

export interface TableMapping {
  legacy: string;
  /** The registered service holding `target` (from the registry, never written here). */
  service: Service;
  target: string;
  /** Business columns (every target column but tenant_id), in the order COPY and the checksum use. */
  columns: ColumnMapping[];
  /** Target columns that identify a row (text-joined with '/' when several). */
  key: string[];
  /** Legacy expression that names the row for people ('42', or '7/42' for a roster entry). */
  legacyKey: string;
  /** Legacy columns of the key: ordering by them is the target key order (see the id mapping). */
  legacyKeyColumns: string[];
  /** Target column holding the legacy id, when the table keeps one. */
  legacyIdColumn?: string;
}

/** The deterministic legacy id → UUID text (see the file comment). */
const mappedId = (legacyTable: string, column: string) => (tenant: string) => {
  const digest = `md5(${tenant} || ':${legacyTable}')`;
  return `(substr(${digest}, 1, 8) || '-' || substr(${digest}, 9, 4) || '-8' || substr(${digest}, 14, 3) || '-a' || substr(${digest}, 18, 3) || '-' || lpad(to_hex(${column}), 12, '0'))`;
};
/**
 * The same uuid without lpad, which cost more than the rest of the expression together (reconcile builds
 * about two per row): 'a' and digits 18–20 become the top 16 bits of a bigint (the 'a' sets its sign bit;
 * to_hex prints the 64 bits unsigned) and the legacy id its low 48, so to_hex prints the last 16 digits
 * whole; uuid input takes them without the hyphen after the fourth group. Both constants fold at plan time.
 */
const mappedUuid = (legacyTable: string, column: string) => (tenant: string) => {
  const digest = `md5(${tenant} || ':${legacyTable}')`;
  const high = `((('x' || substr(${digest}, 18, 3))::bit(12)::integer - 24576)::bigint << 48)`;
  return `(substr(${digest}, 1, 8) || '-' || substr(${digest}, 9, 4) || '-8' || substr(${digest}, 14, 3) || '-' || to_hex(${high} + ${column}))::uuid`;
};
const uuid = (name: string, legacyTable: string, column: string): ColumnMapping => ({
  name,
  type: 'uuid',
  source: mappedId(legacyTable, column),
  sourceTyped: mappedUuid(legacyTable, column),
});
const same = (name: string, type: string): ColumnMapping => ({ name, type, source: () => name });
const legacyId: ColumnMapping = { name: 'legacy_id', type: 'integer', source: () => 'id' };

/**
 * A table with a serial id: the mapped id first, its business columns, and `legacy_id` (the id as it was),
 * so auditors can name any row by the id they know.
 */
type Mapping = Omit<TableMapping, 'service'>;

const keyedTable = (legacy: string, target: string, columns: ColumnMapping[]): Mapping => ({
  legacy,
  target,
  key: ['id'],
  legacyKey: 'id::text',
  legacyKeyColumns: ['id'],
  legacyIdColumn: 'legacy_id',
  columns: [uuid('id', legacy, 'id'), ...columns, legacyId],
});
const schoolId = uuid('school_id', 'schools', 'school_id');
const name = (length: number) => same('name', `character varying(${length})`);
const personName = [same('first_name', 'character varying(100)'), same('last_name', 'character varying(100)')];

/** Legacy table → target table, in foreign-key order. Both COPY and the fingerprint name their columns, so column order is free. */
const MAPPINGS: Mapping[] = [
  keyedTable('schools', 'school', [name(200), same('created_at', 'timestamp with time zone')]),
  keyedTable('students', 'student', [
    ...personName,
    same('grade', 'smallint'),
    same('date_of_birth', 'date'),
    schoolId,
    same('gpa', 'numeric(3,2)'),
    same('created_at', 'timestamp with time zone'),
  ]),
  keyedTable('enrollments', 'enrollment', [
    uuid('student_id', 'students', 'student_id'),
    schoolId,
    same('start_date', 'date'),
    same('end_date', 'date'),
  ]),
  keyedTable('staff', 'staff_member', [...personName, same('email', 'character varying(200)'), same('role', 'text'), schoolId]),
  keyedTable('sections', 'section', [
    name(200),
    same('subject', 'character varying(100)'),
    uuid('teacher_id', 'staff', 'teacher_id'),
    schoolId,
  ]),
  {
    legacy: 'section_rosters',
    target: 'section_student',
    key: ['section_id', 'student_id'],
    legacyKey: `section_id::text || '/' || student_id::text`,
    legacyKeyColumns: ['section_id', 'student_id'],
    columns: [uuid('section_id', 'sections', 'section_id'), uuid('student_id', 'students', 'student_id')],
  },
];

const registry = readRegistry();

/** Each mapping with the registered service that holds its target table. */
export const TABLES: TableMapping[] = MAPPINGS.map((mapping) => {
  try {
    return { ...mapping, service: serviceOwning(mapping.target, registry).name };
  } catch (error) {
    throw new Error(`consolidation maps legacy table ${mapping.legacy} to ${mapping.target}, but ${(error as Error).message}`, {
      cause: error,
    });
  }
});

/** The service holding the district directory: consolidation registers each district there and sets its status. */
export const DIRECTORY: Service = directoryService(registry).name;

/** Every service consolidation writes to, in registry order: the directory and the holders of mapped tables. */
export const SERVICES: Service[] = registry.map((s) => s.name).filter((s) => s === DIRECTORY || TABLES.some((t) => t.service === s));

export const tableName = (table: TableMapping) => `${table.service}.${table.target}`;

/** The district's tenant id as a SQL literal; anything but a UUID is refused. */
function tenantLiteral(tenantId: string): string {
  if (!isUuid(tenantId)) throw new Error(`not a district UUID: ${JSON.stringify(tenantId)}`);
  return escapeLiteral(tenantId);
}

/**
 * `COPY (this) TO STDOUT` on the source: tenant id first, then the business columns in target order, rows
 * in target key order, so the primary-key index only ever appends (PostgreSQL's rightmost-leaf fast path).
 */
export function copySourceSql(table: TableMapping, tenantId: string): string {
  const tenant = tenantLiteral(tenantId);
  return `select ${tenant}::uuid, ${table.columns.map((c) => c.source(tenant)).join(', ')} from public.${table.legacy} order by ${table.legacyKeyColumns.join(', ')}`;
}

export const copyTargetColumns = (table: TableMapping) => ['tenant_id', ...table.columns.map((c) => c.name)];

/**
 * One row's fingerprint `x`: `hash_record_extended` (PostgreSQL 14+) over a row constructor of the business
 * columns in target order, each as its target type, so both sides hash the same typed values with the same
 * functions: each type's extended hash support function (what hash partitioning places rows by, so a
 * major that changed one would misplace the rows pg_upgrade keeps in place), combined into 64 bits; NULL
 * counts as 0. No text is printed (record output cost as much as md5 itself), so no setting matters: a
 * timestamptz hashes its microseconds, not its text in some TimeZone. Text is hashed as its UTF-8 bytes
 * (bytea): neither the server encoding nor the column's collation (a nondeterministic one would hash
 * case variants alike) enters. Equal values hash alike, and for the mapped types equality is identity
 * (numeric's scale is fixed by its typmod, numeric(3,2)). The source builds its mapped ids as uuids
 * (`sourceTyped`), the values the target stores.
 */
const rowFingerprint = (columns: ColumnMapping[], expression: (column: ColumnMapping) => string) =>
  `hash_record_extended(row(${columns.map((c) => hashable(c.type, expression(c))).join(', ')}), 0)`;
/** A column value as its target type; text as its UTF-8 bytes. */
const hashable = (type: string, expression: string) =>
  isText(type) ? `convert_to((${expression})::${type}, 'UTF8')` : `(${expression})::${type}`;
const isText = (type: string) => type === 'text' || type.startsWith('character varying');
const joinKey = (parts: string[]) => parts.join(` || '/' || `);

/**
 * Per-row `k` (target key as text), `x` (fingerprint, bigint) and `legacy` (the legacy name of the row) of
 * one district on the legacy side, computing the target ids.
 */
export function sourceRowsSql(table: TableMapping, tenantId: string): string {
  const tenant = tenantLiteral(tenantId);
  const byName = new Map(table.columns.map((c) => [c.name, c.source(tenant)]));
  const key = joinKey(table.key.map((k) => byName.get(k)!));
  return `select ${key} as k, ${rowFingerprint(table.columns, (c) => (c.sourceTyped ?? c.source)(tenant))} as x, ${table.legacyKey} as legacy from public.${table.legacy}`;
}

/** The same three columns on the target side, for one tenant. */
export function targetRowsSql(table: TableMapping, tenantId: string): string {
  const key = joinKey(table.key.map((k) => `${k}::text`));
  const legacy = table.legacyIdColumn ? `${table.legacyIdColumn}::text` : 'null::text';
  return `select ${key} as k, ${rowFingerprint(table.columns, (c) => c.name)} as x, ${legacy} as legacy from public.${table.target} where tenant_id = ${tenantLiteral(tenantId)}::uuid`;
}

/** A value of each mapped column type whose fingerprint both sides compare before reconciling (see reconcile.ts). */
const PROBE_VALUES: [RegExp, string][] = [
  [/^uuid$/, '0123abcd-4567-89ef-8123-a456789abcde'],
  [/^(text|character varying.*)$/, 'Zoë Ørsted'],
  [/^(smallint|integer|bigint)$/, '-12345'],
  [/^numeric/, '-1.25'],
  [/^date$/, '2024-02-29'],
  [/^timestamp with time zone$/, '2024-02-29 23:59:58.123456+00'],
];

/**
 * One row holding a probe value of every type the mapping hashes, and its fingerprint: equal on two
 * servers when they hash these types alike (same hash functions and byte order).
 */
export function fingerprintProbeSql(): string {
  const types = [...new Set(TABLES.flatMap((t) => t.columns.map((c) => c.type)))];
  const values = types.map((type) => {
    const value = PROBE_VALUES.find(([pattern]) => pattern.test(type))?.[1];
    if (value === undefined) throw new Error(`reconcile has no probe value for the column type ${type}: add one to PROBE_VALUES`);
    return hashable(type, escapeLiteral(value));
  });
  return `select hash_record_extended(row(${values.join(', ')}, null::integer), 0)::text as probe, current_setting('server_encoding') as encoding, current_setting('server_version') as version`;
}

/** Which tenant holds rows with these keys, across every tenant (finds rows filed under another district). */
export function targetKeyOwnersSql(table: TableMapping): string {
  const key = joinKey(table.key.map((k) => `${k}::text`));
  return `select tenant_id::text as tenant, k from (select tenant_id, ${key} as k from public.${table.target}) r where k = any($1::text[])`;
}
