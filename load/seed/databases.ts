/**
 * The service databases of the configured platform (every registered service) (same environment as `npm start`: DATA_DIR,
 * DATABASE_URL, DB_PREFIX, EMBEDDED_PG_PORT), provisioned and migrated so the load tools can run before
 * or after the platform itself has ever started.
 */
import type { Logger } from 'pino';
import { pino } from 'pino';
import { readConfig, type PlatformConfig } from '../../config/config.ts';
import { openPlatformDatabases, type DatabaseServer, type ServiceDatabase } from '../../database/database.ts';

export interface ServiceDatabases {
  config: PlatformConfig;
  server: DatabaseServer;
  /** By registered service name. */
  byService: Record<string, ServiceDatabase>;
  close(): Promise<void>;
}

export async function openServiceDatabases(
  config: PlatformConfig = readConfig(),
  logger: Logger = pino({ level: 'warn' }),
): Promise<ServiceDatabases> {
  const platform = await openPlatformDatabases(config, logger, { migrate: true, attach: true });
  return { config, server: platform.server, byService: platform.byService, close: platform.stop };
}
