import { sqlRule } from '../catalog.ts';

export const rlsNotEnabled = sqlRule(
  'rls-not-enabled',
  'Without row-level security every row of every district is visible to any role that may read the table.',
  `select t.qualified as object, 'has a tenant_id column but row-level security is not enabled' as detail
     from tenant_tables t where not t.rls order by 1`,
);
