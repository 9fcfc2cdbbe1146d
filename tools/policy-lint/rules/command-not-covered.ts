import { COMMANDS_SQL, sqlRule } from '../catalog.ts';

export const commandNotCovered = sqlRule(
  'command-not-covered',
  'Every command needs a tenant policy, and every write policy an explicit WITH CHECK, or writes can land in another district.',
  `select t.qualified as object, format('no permissive policy covers %s', cmd.label) as detail
     from tenant_tables t cross join ${COMMANDS_SQL}
    where t.rls
      and exists (select 1 from pg_policy p where p.polrelid = t.oid)
      and not exists (select 1 from pg_policy p where p.polrelid = t.oid and p.polpermissive and p.polcmd in (cmd.code, '*'))
   union all
   select t.qualified, format('write policy %I has no WITH CHECK', p.polname)
     from tenant_tables t join pg_policy p on p.polrelid = t.oid
    where p.polcmd in ('*', 'a', 'w') and p.polwithcheck is null
    order by 1, 2`,
);
