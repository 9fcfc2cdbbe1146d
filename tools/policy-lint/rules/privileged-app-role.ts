import { sqlRule } from '../catalog.ts';

export const privilegedAppRole = sqlRule(
  'privileged-app-role',
  'A superuser, BYPASSRLS or owning role (or one that can become such a role) is not subject to RLS at all.',
  `select r.rolname as object, a.detail
     from app_roles r join pg_roles pr on pr.oid = r.oid
     cross join lateral (values (pr.rolsuper, 'is superuser'), (pr.rolbypassrls, 'has BYPASSRLS')) as a(flagged, detail)
    where a.flagged
   union all
   select r.rolname, format('owns tenant table %s', t.qualified)
     from app_roles r join tenant_tables t on t.owner = r.oid
   union all
   select r.rolname, format('is a member of %I, which %s', m.rolname,
                            case when m.rolsuper then 'is superuser' when m.rolbypassrls then 'has BYPASSRLS' else 'owns tenant tables' end)
     from app_roles r join pg_roles m on m.oid <> r.oid and pg_has_role(r.oid, m.oid, 'MEMBER')
    where m.rolsuper or m.rolbypassrls or exists (select 1 from tenant_tables t where t.owner = m.oid)
    order by 1, 2`,
);
