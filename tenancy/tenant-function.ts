/**
 * `app.current_tenant_id()`: the tenant of the current transaction, or NULL when none is set — also when
 * the setting is '' (what `current_setting(name, true)` returns after an earlier transaction on the same
 * connection set it). Policies compare `tenant_id` to it, so no tenant reads nothing and writes nothing.
 * A fixed search_path keeps it from resolving objects planted by callers. Each service's first migration runs this.
 */
export const createTenantFunction = [
  `create schema if not exists app`,
  `revoke create on schema app from public`,
  `create or replace function app.current_tenant_id() returns uuid
     language sql stable parallel safe
     set search_path = pg_catalog, pg_temp
     as $$ select nullif(current_setting('app.current_tenant', true), '')::uuid $$`,
  `grant usage on schema app to public`,
];
