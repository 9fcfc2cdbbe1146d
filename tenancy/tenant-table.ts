/**
 * One declaration that makes an entity a tenant table: `tenant_id` leading a composite primary key,
 * FORCEd row-level security with a single policy for all commands, and an application-level filter
 * (the first line of defence; RLS is the last). MikroORM's schema generator turns the `policies`
 * into the `create policy` statements of each service's migrations.
 */
import { randomUUID } from 'node:crypto';
import { EntitySchema, UnderscoreNamingStrategy, type EntityManager } from '@mikro-orm/core';
import { p } from '@mikro-orm/postgresql';

/** Transaction-local setting carrying the tenant; read only through `app.current_tenant_id()`. */
export const TENANT_SETTING = 'app.current_tenant';
export const TENANT_FILTER = 'tenant';
/** Wrapped in a sub-select so PostgreSQL evaluates it once per statement (an InitPlan), not per row. */
const CURRENT_TENANT = '(select app.current_tenant_id())';

const tenantPolicy = {
  name: 'tenant_isolation',
  command: 'all' as const,
  using: (columns: Record<string, string>) => `${columns.tenantId} = ${CURRENT_TENANT}`,
  check: (columns: Record<string, string>) => `${columns.tenantId} = ${CURRENT_TENANT}`,
};

/** Spread into `defineEntity({...})`. */
export const tenantTable = {
  rowLevelSecurity: 'force' as const,
  policies: [tenantPolicy],
  filters: {
    [TENANT_FILTER]: {
      name: TENANT_FILTER,
      default: true,
      cond: (args: { tenantId: string }) => ({ tenantId: args.tenantId }),
    },
  },
};

function tenantOf(em: EntityManager): string {
  const { tenantId } = em.getFilterParams<{ tenantId?: string }>(TENANT_FILTER) ?? {};
  if (!tenantId) throw new Error('no tenant in this entity manager: open it with forkForTenant()');
  return tenantId;
}

/** `tenant_id` taken from the entity manager's tenant (never from input), so a resolver cannot pick another. */
export const tenantIdProperty = () =>
  p
    .uuid()
    .primary()
    .onCreate((_entity: unknown, em: EntityManager) => tenantOf(em));

/** The `(tenant_id, id)` key every tenant table has. */
export const tenantKey = () => ({
  tenantId: tenantIdProperty(),
  id: p
    .uuid()
    .primary()
    .defaultRaw('gen_random_uuid()')
    .onCreate(() => randomUUID()),
});

/**
 * A composite foreign key between two tenant tables of one service: `(tenant_id, <column of property>)`
 * → `(tenant_id, id)` of `references`, so a row can only point at a row of its own district (foreign-key
 * checks bypass RLS). Deferred to commit, because the runtime entities carry no relation for the ORM to
 * order inserts by.
 */
export interface TenantForeignKey {
  entity: EntitySchema;
  /** The scalar uuid property holding the referenced id, e.g. `studentId`. */
  property: string;
  references: EntitySchema;
  /** Constraint name. */
  name: string;
  onDelete?: 'cascade';
}

const naming = new UnderscoreNamingStrategy();

/**
 * The entities as MikroORM's schema generator must see them (`migration:create`): each declared foreign key
 * becomes a ManyToOne over `(tenant_id, column)` on a copy of its entity's schema. The runtime entities stay
 * relation-free, so no query of the application changes (a relation would, for one, add a join to every
 * lookup of the referencing table to apply the tenant filter to the referenced one).
 */
export function withTenantForeignKeys(entities: EntitySchema[], foreignKeys: TenantForeignKey[]): EntitySchema[] {
  const copies = new Map<EntitySchema, EntitySchema>();
  // Relations resolve lazily, so a key may reference an entity that is itself copied.
  const asGenerated = (entity: EntitySchema) => copies.get(entity) ?? entity;
  for (const entity of entities) {
    const declared = foreignKeys.filter((fk) => fk.entity === entity);
    if (declared.length === 0) continue;
    const meta = entity.meta;
    const properties: Record<string, unknown> = { ...meta.properties };
    for (const fk of declared) {
      if (!entities.includes(fk.references))
        throw new Error(`foreign key ${fk.name}: ${fk.references.meta.className} is not an entity of this service`);
      if (!(fk.property in properties)) throw new Error(`foreign key ${fk.name}: ${meta.className} has no property ${fk.property}`);
      properties[`${fk.property}ForeignKey`] = {
        kind: 'm:1',
        entity: () => asGenerated(fk.references),
        joinColumns: ['tenant_id', naming.propertyToColumnName(fk.property)],
        referencedColumnNames: ['tenant_id', 'id'],
        nullable: true,
        deleteRule: fk.onDelete ?? 'no action',
        updateRule: 'no action',
        deferMode: 'deferred',
        foreignKeyName: fk.name,
      };
    }
    // A fresh schema from the declaration only: the runtime entity's class, root and discovery state stay its own.
    const declaration: Record<string, unknown> = { ...meta, name: meta.className, properties };
    for (const discovered of ['_id', 'propertyOrder', 'root', 'props', 'relations', 'primaryKeys', 'class', 'prototype'])
      delete declaration[discovered];
    copies.set(entity, new EntitySchema(declaration as never));
  }
  for (const fk of foreignKeys)
    if (!copies.has(fk.entity)) throw new Error(`foreign key ${fk.name}: ${fk.entity.meta.className} is not an entity of this service`);
  return entities.map(asGenerated);
}
