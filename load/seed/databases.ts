/**
 * The three service databases of the configured platform (same environment as `npm start`: DATA_DIR,
 * DATABASE_URL, DB_PREFIX, EMBEDDED_PG_PORT), provisioned and migrated so the load tools can run before
 * or after the platform itself has ever started.
 */
import type { Logger } from 'pino';
import { pino } from 'pino';
import { readConfig, type PlatformConfig } from '../../gateway/config.ts';
import { migrateService, openDatabaseServer, provisionDatabases, type DatabaseServer, type ServiceDatabase } from '../../migrations/database.ts';
import { subgraphs } from '../../subgraphs/index.ts';

export type ServiceName = 'districts' | 'students' | 'staff';

export interface ServiceDatabases {
  config: PlatformConfig;
  server: DatabaseServer;
  byService: Record<ServiceName, ServiceDatabase>;
  close(): Promise<void>;
}

export async function openServiceDatabases(config: PlatformConfig = readConfig(), logger: Logger = pino({ level: 'warn' })): Promise<ServiceDatabases> {
  const server = await openDatabaseServer({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, embeddedPort: config.embeddedPort, logger, attach: true });
  try {
    const provisioned = await provisionDatabases({ adminUrl: server.adminUrl, dataDir: config.dataDir, prefix: config.prefix, services: subgraphs.map((s) => s.name) });
    const byService = Object.fromEntries(provisioned.map((db) => [db.service, db])) as Record<ServiceName, ServiceDatabase>;
    for (const definition of subgraphs) await migrateService(definition, byService[definition.name as ServiceName]);
    return { config, server, byService, close: () => server.stop() };
  } catch (error) {
    await server.stop().catch(() => {});
    throw error;
  }
}
