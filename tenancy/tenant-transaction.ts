/**
 * The only place that opens a tenant context on the database. Everything that reads or writes tenant
 * rows as the application role (request handlers, seeding, tests) goes through here.
 */
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { isUuid } from './tenant-context.ts';
import { TENANT_FILTER, TENANT_SETTING } from './tenant-table.ts';

/**
 * A fresh entity manager whose every transaction starts with `set_config('app.current_tenant', $1, true)`
 * (transaction-local, parameterised) and whose queries carry the tenant filter.
 */
export function forkForTenant(orm: MikroORM, tenantId: string): EntityManager {
  if (!isUuid(tenantId)) throw new Error('refusing to open a tenant context without a valid tenant id');
  const em = orm.em.fork({ session: { variables: { [TENANT_SETTING]: tenantId } } });
  em.setFilterParams(TENANT_FILTER, { tenantId });
  return em;
}

/** Runs `work` in one transaction for `tenantId`: committed when it resolves, rolled back when it throws. */
export function inTenantTransaction<T>(orm: MikroORM, tenantId: string, work: (em: EntityManager) => Promise<T>): Promise<T> {
  return forkForTenant(orm, tenantId).transactional((em) => work(em));
}
