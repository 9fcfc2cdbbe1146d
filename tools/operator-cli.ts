/**
 * What every operator CLI (check:policies, backup, explain) shares: the service databases of the configured
 * platform, reached the way `npm run migrate` reaches them (embedded PostgreSQL or DATABASE_URL, as the
 * owner), and an exit that reports errors as one line and keeps the exit code.
 */
import '../config/node-version.ts';
import pg from 'pg';
import { readConfig } from '../config/config.ts';
import { rootLogger } from '../config/logger.ts';
import { directoryService } from '../config/registry.ts';
import { openPlatformDatabases, type ServiceDatabase } from '../database/database.ts';

/** Runs `work` with every service database of the configured platform, then stops an embedded server. */
export async function withServiceDatabases<T>(work: (databases: ServiceDatabase[]) => Promise<T>): Promise<T> {
  // Leaves the application roles' session defaults as they are, so check:policies reports a role that changed
  // its own (npm start and npm run migrate restore them).
  const platform = await openPlatformDatabases(readConfig(), rootLogger, { attach: true, pinSettings: false });
  try {
    return await work(platform.databases);
  } finally {
    await platform.stop();
  }
}

/** The directory service's database (the registry entry with `"directory": true`) among `databases`. */
export function directoryDatabase(databases: ServiceDatabase[]): ServiceDatabase {
  const name = directoryService().name;
  const directory = databases.find((database) => database.service === name);
  if (!directory) throw new Error(`no ${name} database configured`);
  return directory;
}

/** Runs `work` on a connection of its own to `url` (an owner URL of `withServiceDatabases`), closed afterwards. */
export async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Settings that make value output identical on every PostgreSQL major and server configuration (COPY moves text). */
export const CANONICAL_SETTINGS = [
  `set TimeZone = 'UTC'`,
  `set DateStyle = 'ISO, YMD'`,
  `set IntervalStyle = 'postgres'`,
  `set extra_float_digits = 3`,
  `set bytea_output = 'hex'`,
];

/** Runs a CLI's main; an error becomes one line on stderr (never a stack) and `failureCode`. */
export async function runCli(name: string, main: () => Promise<number>, failureCode = 2): Promise<void> {
  const exitCode = await main().catch((error: unknown) => {
    console.error(`${name}: ${error instanceof Error ? error.message : String(error)}`);
    return failureCode;
  });
  // Exit once stdout is flushed, whatever handles or timers are still open.
  process.stdout.write('', () => process.exit(exitCode));
}
