import { sqlRule } from '../catalog.ts';

/** TRUNCATE, which also allows every lock mode, is app-role-truncate-references' finding. */
export const appRoleCanLockTables = sqlRule(
  'app-role-can-lock-tables',
  'Table-level UPDATE or DELETE lets a role LOCK the table in ACCESS EXCLUSIVE mode, stalling every district at once.',
  `select r.rolname as object,
          format('holds table-level %s on %s, so it may LOCK it in ACCESS EXCLUSIVE mode (grant UPDATE per column instead)', p.privilege, t.qualified) as detail
     from app_roles r cross join tenant_tables t cross join (values ('UPDATE'), ('DELETE')) as p(privilege)
    where has_table_privilege(r.oid, t.oid, p.privilege)
    order by 1, 2`,
);
