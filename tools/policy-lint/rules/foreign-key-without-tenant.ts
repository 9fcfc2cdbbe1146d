import { sqlRule } from '../catalog.ts';

export const foreignKeyWithoutTenant = sqlRule(
  'foreign-key-without-tenant',
  "Foreign-key checks bypass RLS: a key without tenant_id lets a row point at, and probe for, another district's rows.",
  `select t.qualified as object, format('foreign key %I does not pair tenant_id with the referenced tenant_id', c.conname) as detail
     from pg_constraint c join tenant_tables t on t.oid = c.conrelid
    where c.contype = 'f'
      and not exists (
        select 1 from unnest(c.conkey, c.confkey) as k(local_attnum, referenced_attnum)
          join pg_attribute la on la.attrelid = c.conrelid and la.attnum = k.local_attnum
          join pg_attribute ra on ra.attrelid = c.confrelid and ra.attnum = k.referenced_attnum
         where la.attname = 'tenant_id' and ra.attname = 'tenant_id')
    order by 1, 2`,
);
