import { appRoleSessionDefaults, queryCatalog, type PolicyRule, type RawFinding } from '../catalog.ts';

/**
 * Every SQL statement the ORM sends carries its values in the text (MikroORM interpolates them client-side),
 * and pg_stat_activity shows a session's text to every session of the same role, in any database.
 */
export const appRoleSeesOtherSessions: PolicyRule = {
  name: 'app-role-sees-other-sessions',
  rationale: "An application role's sessions must not publish their query text, which holds every district's values, to each other.",
  async check(target) {
    const findings: RawFinding[] = [];
    for (const [role, defaults] of await appRoleSessionDefaults(target)) {
      if (defaults.get('track_activities') !== 'off') {
        findings.push({
          object: role,
          detail: "track_activities is not pinned off: every session of the role reads the others' query text in pg_stat_activity",
        });
      }
    }
    findings.push(
      ...(await queryCatalog(
        target,
        `select r.rolname as object, format('is a member of %I: reads the query text of every session', m.rolname) as detail
           from app_roles r cross join (values ('pg_read_all_stats')) as m(rolname)
          where pg_has_role(r.oid, m.rolname, 'MEMBER')`,
      )),
    );
    return findings.sort((a, b) => `${a.object} ${a.detail}`.localeCompare(`${b.object} ${b.detail}`));
  },
};
