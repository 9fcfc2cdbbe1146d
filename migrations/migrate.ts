/** `npm run migrate`: provisions roles and databases and runs every service's migrations (idempotent). */
import '../gateway/node-version.ts';
import { readConfig } from '../gateway/config.ts';
import { rootLogger } from '../subgraphs/kit/logger.ts';
import { subgraphs } from '../subgraphs/index.ts';
import { migrateService, openDatabaseServer, provisionDatabases } from './database.ts';

const config = readConfig();
const server = await openDatabaseServer({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, embeddedPort: config.embeddedPort, logger: rootLogger });
try {
  const databases = await provisionDatabases({ adminUrl: server.adminUrl, dataDir: config.dataDir, prefix: config.prefix, services: subgraphs.map((s) => s.name) });
  for (const definition of subgraphs) {
    const target = databases.find((db) => db.service === definition.name)!;
    const applied = await migrateService(definition, target);
    console.log(`${target.database}: ${applied.length ? `applied ${applied.join(', ')}` : 'up to date'}`);
  }
} finally {
  await server.stop();
}
