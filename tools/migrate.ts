/** `npm run migrate`: provisions roles and databases and runs every service's migrations (idempotent). */
import '../config/node-version.ts';
import { readConfig } from '../config/config.ts';
import { rootLogger } from '../config/logger.ts';
import { openPlatformDatabases } from '../database/database.ts';

const platform = await openPlatformDatabases(readConfig(), rootLogger, { migrate: true, attach: true });
try {
  for (const { service, database } of platform.databases) {
    const applied = platform.applied[service]!;
    console.log(`${database}: ${applied.length ? `applied ${applied.join(', ')}` : 'up to date'}`);
  }
} finally {
  await platform.stop();
}
