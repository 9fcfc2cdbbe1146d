import { sqlRule } from '../catalog.ts';

export const noTenantIndex = sqlRule(
  'no-tenant-index',
  "Every query filters on tenant_id; without an index leading with it each request scans every district's rows.",
  `select t.qualified as object, 'has no index whose first column is tenant_id' as detail
     from tenant_tables t
    where not exists (select 1 from pg_index i where i.indrelid = t.oid and i.indkey[0] = t.tenant_attnum)
    order by 1`,
);
