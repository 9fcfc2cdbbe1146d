/**
 * The platform for development and tests. preparePlatform does what comes before any service: PostgreSQL
 * (embedded or DATABASE_URL), roles and databases, migrations, keys, the demo seed. `npm start` then runs
 * each service as a process of its own (dev/start.ts); startPlatform runs them all in this process (every
 * test, and `npm start -- --in-process`).
 */
import type { Logger } from 'pino';
import type { RunningServer } from '../http/server.ts';
import { rootLogger } from '../config/logger.ts';
import { startSubgraph, type RunningSubgraph, type SubgraphDefinition } from '../subgraph-server/subgraph.ts';
import { loadSubgraphs } from '../subgraph-server/registry.ts';
import { openPlatformDatabases, type DatabaseServer, type ServiceDatabase } from '../database/database.ts';
import { initOrm } from '../database/orm.ts';
import { DEMO_DISTRICTS, seedDemoDistricts } from './seed.ts';
import { resolveCallerAuth, type CallerAuthConfig } from '../gateway/caller-auth.ts';
import { readConfig, type PlatformConfig } from '../config/config.ts';
import { startGateway } from '../gateway/gateway.ts';
import { metricsSettingsOf } from '../telemetry/metrics.ts';
import { devIssuerOf, issueDevToken, loadOrCreateKeys, type PlatformKeys } from './keys.ts';

export interface PlatformOptions {
  config?: PlatformConfig;
  /** Seed the demo districts (default true). */
  seed?: boolean;
  logger?: Logger;
  /** Sees every SQL statement the subgraphs send, by subgraph name (tests). */
  onQuery?: (service: string, sql: string) => void;
}

/** Everything a platform needs before its services start; stop() stops the database server. */
export interface PreparedPlatform {
  config: PlatformConfig;
  server: DatabaseServer;
  databases: Record<string, ServiceDatabase>;
  definitions: SubgraphDefinition[];
  keys: PlatformKeys;
  stop(): Promise<void>;
}

export async function preparePlatform(options: PlatformOptions = {}): Promise<PreparedPlatform> {
  const config = options.config ?? readConfig();
  const logger = options.logger ?? rootLogger;
  const { server, byService: databases, applied } = await openPlatformDatabases(config, logger, { migrate: true });
  try {
    for (const [service, migrations] of Object.entries(applied))
      if (migrations.length) logger.info({ service, applied: migrations }, 'migrated');
    const keys = await loadOrCreateKeys(config.dataDir);
    const definitions = await loadSubgraphs();
    if (options.seed ?? true) await seedThroughApplicationRoles(definitions, databases);
    return { config, server, databases, definitions, keys, stop: () => server.stop() };
  } catch (error) {
    await server.stop().catch(() => {});
    throw error;
  }
}

/** The demo seed, written as each service's application role (through RLS, as every request writes). */
async function seedThroughApplicationRoles(definitions: SubgraphDefinition[], databases: Record<string, ServiceDatabase>): Promise<void> {
  const orms = await Promise.all(
    definitions.map(
      async (d) =>
        [d.name, await initOrm({ service: d.name, entities: d.entities, clientUrl: databases[d.name]!.appUrl, poolSize: 1 })] as const,
    ),
  );
  try {
    await seedDemoDistricts(Object.fromEntries(orms));
  } finally {
    await Promise.all(orms.map(([, orm]) => orm.close()));
  }
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

/** The whole platform in this process. */
export async function startPlatform(options: PlatformOptions = {}): Promise<Platform> {
  const logger = options.logger ?? rootLogger;
  const prepared = await preparePlatform(options);
  const { config, databases, keys } = prepared;
  const started: { close(): Promise<void> }[] = [];
  try {
    const running: Record<string, RunningSubgraph> = {};
    for (const definition of prepared.definitions) {
      const subgraph = await startSubgraph(definition, {
        port: config.subgraphPorts[definition.name] ?? 0,
        host: config.host,
        databaseUrl: databases[definition.name]!.appUrl,
        contextPublicKey: keys.context.publicJwk,
        poolSize: config.poolSize,
        operationLimits: config.operationLimits,
        redisUrl: config.redisUrl,
        metrics: metricsSettingsOf(config, definition.name),
        databaseFaults: config.databaseFaults,
        logger,
        onQuery: options.onQuery && ((sql) => options.onQuery!(definition.name, sql)),
        // Ports are chosen at start (0 in tests): a referenced service is looked up where it actually listens.
        serviceUrl: (service) => running[service]?.url,
      });
      running[definition.name] = subgraph;
      started.push(subgraph);
    }
    const auth = await resolveCallerAuth(config, devIssuerOf(keys));
    const gateway = await startGateway({
      port: config.gatewayPort,
      host: config.host,
      auth,
      subgraphUrls: Object.fromEntries(Object.entries(running).map(([name, s]) => [name, s.url])),
      contextPrivateKey: keys.context.privateJwk,
      districtStatusTtlMs: config.districtStatusTtlMs,
      supergraph: config.supergraph,
      operationLimits: config.operationLimits,
      districtConcurrency: config.districtConcurrency,
      subgraphFetch: config.subgraphFetch,
      districtRate: config.districtRate,
      frontend: config.frontend,
      redisUrl: config.redisUrl,
      metrics: metricsSettingsOf(config, 'gateway'),
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
      server: prepared.server,
      async stop() {
        for (const service of started.reverse()) await service.close();
        await prepared.stop();
      },
    };
  } catch (error) {
    for (const service of started.reverse()) await service.close().catch(() => {});
    await prepared.stop().catch(() => {});
    throw error;
  }
}

/** The operation of the curl lines `npm start` prints (a legitimate operation the operation limits must let through). */
export const WELCOME_QUERY =
  '{ district { name slug schools { name } } students(first: 3) { edges { node { firstName lastName grade } } } }';

/**
 * What `npm start` prints once the gateway is ready: its URL, the explorer's when it is on, and, with the development
 * issuer, a curl per demo district.
 */
export async function welcomeText(gatewayUrl: string, config: PlatformConfig, keys: PlatformKeys): Promise<string> {
  const usesDevIssuer = !config.jwt.jwksUrl && !config.jwt.jwksFile;
  const query = JSON.stringify({ query: WELCOME_QUERY });
  const lines = ['', `Gateway: ${gatewayUrl}`];
  if (config.frontend.explorer) lines.push(`Explorer: ${gatewayUrl} in a browser (paste a token below into its Headers pane)`);
  lines.push('');
  if (usesDevIssuer) {
    for (const demo of DEMO_DISTRICTS) {
      const token = await issueDevToken(keys, { tenantId: demo.tenantId, tenantClaim: config.jwt.tenantClaim, expiresIn: '12h' });
      lines.push(
        `# ${demo.slug}`,
        `curl -s ${gatewayUrl} -H 'content-type: application/json' -H 'authorization: Bearer ${token}' -d '${query}'`,
        '',
      );
    }
    lines.push('More tokens: npm run --silent token -- --tenant <uuid|demo-slug>', '');
  }
  lines.push('Ctrl-C stops the platform.');
  return lines.join('\n');
}
