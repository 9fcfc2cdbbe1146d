/**
 * Starts the whole platform in one process: PostgreSQL (embedded or DATABASE_URL), roles and databases,
 * migrations, demo seed, the three subgraphs and the gateway. `npm start` and every test use this.
 */
import { readFile } from 'node:fs/promises';
import type { JSONWebKeySet } from 'jose';
import type { Logger } from 'pino';
import type { RunningServer } from '../subgraphs/kit/http.ts';
import { rootLogger } from '../subgraphs/kit/logger.ts';
import { startSubgraph, type RunningSubgraph } from '../subgraphs/kit/subgraph.ts';
import { subgraphs } from '../subgraphs/index.ts';
import { openPlatformDatabases, type DatabaseServer, type ServiceDatabase } from '../migrations/database.ts';
import { seedDemoDistricts, type ServiceOrms } from '../migrations/seed.ts';
import type { CallerAuthConfig } from './caller-auth.ts';
import { readConfig, type PlatformConfig } from './config.ts';
import { startGateway } from './gateway.ts';
import { DEV_AUDIENCE, DEV_ISSUER, loadOrCreateKeys, type PlatformKeys } from './keys.ts';

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

/** The caller-token settings: an external issuer (JWKS_URL / JWKS_FILE) or the development issuer in the data folder. */
export async function resolveCallerAuth(config: PlatformConfig, keys: PlatformKeys): Promise<CallerAuthConfig> {
  const { jwt } = config;
  const common = { tenantClaim: jwt.tenantClaim, algorithms: jwt.algorithms, clockToleranceSeconds: jwt.clockToleranceSeconds };
  if (jwt.jwksUrl || jwt.jwksFile) {
    if (!jwt.issuer || !jwt.audience) throw new Error('JWT_ISSUER and JWT_AUDIENCE are required with JWKS_URL or JWKS_FILE');
    const jwks = jwt.jwksUrl
      ? { url: jwt.jwksUrl }
      : { keys: JSON.parse(await readFile(jwt.jwksFile!, 'utf8')) as JSONWebKeySet };
    return { ...common, issuer: jwt.issuer, audience: jwt.audience, jwks };
  }
  // Development: the issuer whose keys were generated into the data folder (`npm run token`).
  return { ...common, issuer: jwt.issuer ?? DEV_ISSUER, audience: jwt.audience ?? DEV_AUDIENCE, jwks: { keys: keys.devIssuer.jwks } };
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
    for (const definition of subgraphs) {
      const subgraph = await startSubgraph(definition, {
        port: config.subgraphPorts[definition.name] ?? 0,
        host: config.host,
        databaseUrl: databases[definition.name]!.appUrl,
        contextPublicKey: keys.context.publicJwk,
        poolSize: config.poolSize,
        logger,
        onQuery: options.onQuery && ((sql) => options.onQuery!(definition.name, sql)),
      });
      running[definition.name] = subgraph;
      started.push(subgraph);
    }
    if (options.seed ?? true) {
      await seedDemoDistricts(Object.fromEntries(Object.entries(running).map(([name, s]) => [name, s.orm])) as unknown as ServiceOrms);
    }
    const auth = await resolveCallerAuth(config, keys);
    const gateway = await startGateway({
      port: config.gatewayPort,
      host: config.host,
      auth,
      subgraphUrls: Object.fromEntries(Object.entries(running).map(([name, s]) => [name, s.url])),
      contextPrivateKey: keys.context.privateJwk,
      districtStatusTtlMs: config.districtStatusTtlMs,
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
