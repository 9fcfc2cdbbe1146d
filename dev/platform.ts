/**
 * Starts the whole platform in one process: PostgreSQL (embedded or DATABASE_URL), roles and databases,
 * migrations, demo seed, the three subgraphs and the gateway. `npm start` and every test use this.
 */
import type { Logger } from 'pino';
import type { RunningServer } from '../http/server.ts';
import { rootLogger } from '../config/logger.ts';
import { startSubgraph, type RunningSubgraph } from '../subgraph-server/subgraph.ts';
import { loadSubgraphs } from '../subgraph-server/registry.ts';
import { openPlatformDatabases, type DatabaseServer, type ServiceDatabase } from '../database/database.ts';
import { seedDemoDistricts, type ServiceOrms } from './seed.ts';
import { resolveCallerAuth, type CallerAuthConfig } from '../gateway/caller-auth.ts';
import { readConfig, type PlatformConfig } from '../config/config.ts';
import { startGateway } from '../gateway/gateway.ts';
import { devIssuerOf, loadOrCreateKeys, type PlatformKeys } from './keys.ts';

export interface PlatformOptions {
  config?: PlatformConfig;
  /** Seed the demo districts (default true). */
  seed?: boolean;
  logger?: Logger;
  /** Sees every SQL statement the subgraphs send, by subgraph name (tests). */
  onQuery?: (service: string, sql: string) => void;
}

export interface Platform {
  config: PlatformConfig;
  gateway: RunningServer;
  subgraphs: Record<string, RunningSubgraph>;
  databases: Record<string, ServiceDatabase>;
  keys: PlatformKeys;
  auth: CallerAuthConfig;
  server: DatabaseServer;
  stop(): Promise<void>;
}

export async function startPlatform(options: PlatformOptions = {}): Promise<Platform> {
  const config = options.config ?? readConfig();
  const logger = options.logger ?? rootLogger;
  const { server, byService: databases, applied } = await openPlatformDatabases(config, logger, { migrate: true });
  for (const [service, migrations] of Object.entries(applied)) if (migrations.length) logger.info({ service, applied: migrations }, 'migrated');
  const started: { close(): Promise<void> }[] = [];
  try {
    const keys = await loadOrCreateKeys(config.dataDir);
    const running: Record<string, RunningSubgraph> = {};
    for (const definition of await loadSubgraphs()) {
      const subgraph = await startSubgraph(definition, {
        port: config.subgraphPorts[definition.name] ?? 0,
        host: config.host,
        databaseUrl: databases[definition.name]!.appUrl,
        contextPublicKey: keys.context.publicJwk,
        poolSize: config.poolSize,
        operationLimits: config.operationLimits,
        logger,
        onQuery: options.onQuery && ((sql) => options.onQuery!(definition.name, sql)),
      });
      running[definition.name] = subgraph;
      started.push(subgraph);
    }
    if (options.seed ?? true) {
      await seedDemoDistricts(Object.fromEntries(Object.entries(running).map(([name, s]) => [name, s.orm])) as unknown as ServiceOrms);
    }
    const auth = await resolveCallerAuth(config, devIssuerOf(keys));
    const gateway = await startGateway({
      port: config.gatewayPort,
      host: config.host,
      auth,
      subgraphUrls: Object.fromEntries(Object.entries(running).map(([name, s]) => [name, s.url])),
      contextPrivateKey: keys.context.privateJwk,
      districtStatusTtlMs: config.districtStatusTtlMs,
      operationLimits: config.operationLimits,
      districtConcurrency: config.districtConcurrency,
      logger,
    });
    started.push(gateway);
    return {
      config,
      gateway,
      subgraphs: running,
      databases,
      keys,
      auth,
      server,
      async stop() {
        for (const service of started.reverse()) await service.close();
        await server.stop();
      },
    };
  } catch (error) {
    for (const service of started.reverse()) await service.close().catch(() => {});
    await server.stop().catch(() => {});
    throw error;
  }
}
