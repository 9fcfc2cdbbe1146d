import { sqlRule } from '../catalog.ts';

export const appRoleTruncateReferences = sqlRule(
  'app-role-truncate-references',
  "TRUNCATE ignores RLS and empties every district; REFERENCES lets a role build foreign keys that probe other districts' keys.",
  `select r.rolname as object, format('holds %s on %s', p.privilege, t.qualified) as detail
     from app_roles r cross join tenant_tables t cross join (values ('TRUNCATE'), ('REFERENCES')) as p(privilege)
    where has_table_privilege(r.oid, t.oid, p.privilege)
    order by 1, 2`,
);
