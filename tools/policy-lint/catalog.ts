/**
 * What every policy rule shares: the definition of a tenant table, the application roles, and the shape
 * of a rule and of a finding. A tenant table is any table outside the system schemas with a `tenant_id`
 * column — so a new table is checked the moment it exists, whoever wrote its migration.
 */
import type pg from 'pg';

export interface Finding {
  rule: string;
  database: string;
  /** The table, role, view, function or server the finding is about. */
  object: string;
  detail: string;
}

export type RawFinding = Pick<Finding, 'object' | 'detail'>;

export interface LintTarget {
  client: pg.ClientBase;
  /** Roles the services connect as; every other role granted access to a tenant table counts too. */
  appRoles: string[];
}

export interface PolicyRule {
  name: string;
  /** One line: why a finding of this rule breaks isolation. */
  rationale: string;
  check(target: LintTarget): Promise<RawFinding[]>;
}

/**
 * Catalog views every SQL rule may read:
 * - tenant_tables: oid, qualified name, attnum of tenant_id, owner, RLS flags, ACL;
 * - app_roles: the named application roles plus every other grantee on a tenant table (not its owner).
 * `$1` is the array of named application roles.
 */
const CATALOG_CTES = `
tenant_tables as (
  select c.oid, format('%I.%I', n.nspname, c.relname) as qualified, c.relname as name, a.attnum as tenant_attnum,
         c.relowner as owner, c.relrowsecurity as rls, c.relforcerowsecurity as forced, c.relacl as acl
    from pg_class c
    join pg_namespace n on n.oid = c.relnamespace
    join pg_attribute a on a.attrelid = c.oid and a.attname = 'tenant_id' and a.attnum > 0 and not a.attisdropped
   where c.relkind in ('r', 'p')
     and n.nspname not in ('pg_catalog', 'information_schema')
     and n.nspname not like 'pg\\_toast%'
),
app_roles as (
  select r.oid, r.rolname from pg_roles r where r.rolname = any($1::text[])
  union
  select r.oid, r.rolname
    from tenant_tables t cross join lateral aclexplode(t.acl) g join pg_roles r on r.oid = g.grantee
   where t.acl is not null and g.grantee <> t.owner
)`;

/** The four commands a policy may cover, with their `pg_policy.polcmd` codes. */
export const COMMANDS_SQL = `(values ('r', 'SELECT'), ('a', 'INSERT'), ('w', 'UPDATE'), ('d', 'DELETE')) as cmd(code, label)`;

/** Runs a rule's SELECT (returning `object` and `detail`) with the shared catalog views in scope. */
export async function queryCatalog<Row extends object = RawFinding>(target: LintTarget, select: string): Promise<Row[]> {
  const { rows } = await target.client.query<Row>(`with recursive ${CATALOG_CTES} ${select}`, [target.appRoles]);
  return rows;
}

/** A rule that is one catalog query. */
export const sqlRule = (name: string, rationale: string, select: string): PolicyRule => ({
  name,
  rationale,
  check: (target) => queryCatalog(target, select),
});

/**
 * The effective session defaults of each application role that can log in, for sessions in the linted database:
 * its role-wide entries overridden by its entries for this database (PostgreSQL's precedence). Roles without
 * any entry map to an empty Map.
 */
export async function appRoleSessionDefaults(target: LintTarget): Promise<Map<string, Map<string, string>>> {
  const rows = await queryCatalog<{ role: string; name: string | null; value: string | null }>(
    target,
    `select r.rolname as role, split_part(c.entry, '=', 1) as name, substr(c.entry, strpos(c.entry, '=') + 1) as value
       from app_roles r
       join pg_roles pr on pr.oid = r.oid and pr.rolcanlogin
       left join pg_db_role_setting s
         on s.setrole = r.oid and s.setdatabase in (0, (select d.oid from pg_database d where d.datname = current_database()))
       left join lateral unnest(s.setconfig) as c(entry) on true
      order by r.rolname, s.setdatabase`,
  );
  const defaults = new Map<string, Map<string, string>>();
  for (const { role, name, value } of rows) {
    if (!defaults.has(role)) defaults.set(role, new Map());
    // Ordered role-wide (setdatabase 0) first, so this database's entry overwrites it.
    if (name !== null && value !== null) defaults.get(role)!.set(name, value);
  }
  return defaults;
}
