import { COMMANDS_SQL, sqlRule } from '../catalog.ts';

export const multiplePermissive = sqlRule(
  'multiple-permissive',
  'Permissive policies are ORed together, so a second one silently widens what the tenant policy allows.',
  `select t.qualified as object,
          format('%s permissive policies apply to %s and OR together: %s', count(*), cmd.label, string_agg(quote_ident(p.polname), ', ' order by p.polname)) as detail
     from tenant_tables t cross join ${COMMANDS_SQL}
     join pg_policy p on p.polrelid = t.oid and p.polpermissive and p.polcmd in (cmd.code, '*')
    group by t.qualified, cmd.code, cmd.label
   having count(*) > 1
    order by 1, 2`,
);
