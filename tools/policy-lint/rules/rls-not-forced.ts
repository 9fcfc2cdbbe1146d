import { sqlRule } from '../catalog.ts';

export const rlsNotForced = sqlRule(
  'rls-not-forced',
  "Unforced RLS does not apply to the table's owner, so any code path running as the owner sees every district.",
  `select t.qualified as object, 'row-level security is enabled but not forced (FORCE ROW LEVEL SECURITY)' as detail
     from tenant_tables t where t.rls and not t.forced order by 1`,
);
