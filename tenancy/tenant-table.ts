/**
 * One declaration that makes an entity a tenant table: `tenant_id` leading a composite primary key,
 * FORCEd row-level security with a single policy for all commands, and an application-level filter
 * (the first line of defence; RLS is the last). MikroORM's schema generator turns the `policies`
 * into the `create policy` statements of each service's migrations.
 */
import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/core';
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
export const tenantIdProperty = () => p.uuid().primary().onCreate((_entity: unknown, em: EntityManager) => tenantOf(em));

/** The `(tenant_id, id)` key every tenant table has. */
export const tenantKey = () => ({
  tenantId: tenantIdProperty(),
  id: p.uuid().primary().defaultRaw('gen_random_uuid()').onCreate(() => randomUUID()),
});
