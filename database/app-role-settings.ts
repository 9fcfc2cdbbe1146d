/**
 * The session defaults every application role gets, pinned role-wide (`ALTER ROLE <app> SET …`) by provisioning
 * on every `npm start` / `npm run migrate`, and checked by the policy linter (`app-role-settings-not-pinned`,
 * `app-role-sees-other-sessions`). Role-wide, so they also hold in restored copies of a database.
 *
 * PostgreSQL lets every role change its OWN defaults for user-settable parameters (`ALTER ROLE current_user
 * [IN DATABASE …] SET statement_timeout = 0`, and the role-in-database entry wins over the role-wide one), so
 * the three timeouts can be overwritten by an application-role session; the linter reports that, and the
 * next provisioning restores them. `track_activities` is superuser-only: the application role can neither
 * SET it, nor change or RESET the pinned default, nor pass it as a startup option. Values are written as
 * PostgreSQL displays them (SHOW), so the catalog entry and a session's value read the same.
 */
export const APP_ROLE_SETTINGS = {
  /** The gateway waits 30 s for a subgraph; a statement running longer serves no one. */
  statement_timeout: '30s',
  /** A statement queued behind a lock fails after 10 s rather than piling up connections. */
  lock_timeout: '10s',
  /** A request's transaction is never idle for long (its longest wait is a reference lookup, ≤ 5 s). */
  idle_in_transaction_session_timeout: '1min',
  /**
   * Off: the role's sessions publish no query text. MikroORM interpolates every value into the SQL text, and
   * pg_stat_activity shows a session's text to every other session of the same role, in any database.
   */
  track_activities: 'off',
} as const;

export type AppRoleSetting = keyof typeof APP_ROLE_SETTINGS;
