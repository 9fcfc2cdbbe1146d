import { sqlRule } from '../catalog.ts';

export const keyNotLeadingTenant = sqlRule(
  'key-not-leading-tenant',
  "Uniqueness is checked across all districts: a key without leading tenant_id collides with, and so reveals, another district's values.",
  `select t.qualified as object,
          format('%s %I does not lead with tenant_id', case when i.indisprimary then 'primary key' else 'unique index' end, ic.relname) as detail
     from tenant_tables t
     join pg_index i on i.indrelid = t.oid and i.indisunique
     join pg_class ic on ic.oid = i.indexrelid
    where i.indkey[0] <> t.tenant_attnum
    order by 1, 2`,
);
