import { sqlRule } from '../catalog.ts';

export const rlsWithoutPolicy = sqlRule(
  'rls-without-policy',
  'RLS with no policy denies everything; the usual "fix" under pressure is disabling RLS, so it must never ship.',
  `select t.qualified as object, 'row-level security is enabled but the table has no policy' as detail
     from tenant_tables t
    where t.rls and not exists (select 1 from pg_policy p where p.polrelid = t.oid)
    order by 1`,
);
