/**
 * `npm run start:subgraph -- <name>`: one subgraph of the service registry, configured by the environment
 * (README, Configuration). It needs its application role's URL (`<NAME>_DATABASE_URL`, e.g.
 * STUDENTS_DATABASE_URL) and the tenant-context public key (TENANT_CONTEXT_PUBLIC_KEY_FILE or
 * TENANT_CONTEXT_PUBLIC_KEY), and listens on its port variable. SIGTERM drains it; with REUSE_PORT=true a
 * replacement replica can start on the same port first.
 */
import '../config/node-version.ts';
import { readConfig, readJwk, subgraphVariable } from '../config/config.ts';
import { rootLogger } from '../config/logger.ts';
import { readRegistry } from '../config/registry.ts';
import { runService } from '../http/lifecycle.ts';
import { TRACING_NOT_PRELOADED, startTracing } from '../telemetry/tracing.ts';
import { metricsSettingsOf } from '../telemetry/metrics.ts';
import { loadSubgraphByName } from './registry.ts';
import { startSubgraph } from './subgraph.ts';

const name = process.argv[2];
if (!name || process.argv.length > 3) {
  console.error(
    `usage: npm run start:subgraph -- <${readRegistry()
      .map((s) => s.name)
      .join('|')}>`,
  );
  process.exit(2);
}
const config = readConfig();
const tracing = startTracing(config.tracing, { serviceName: name, followCallerSampling: true });
if (!tracing.preloaded) rootLogger.warn(TRACING_NOT_PRELOADED);
await runService(
  async () => {
    const definition = await loadSubgraphByName(name);
    const databaseUrl = config.subgraphDatabaseUrls[name];
    if (!databaseUrl)
      throw new Error(`${subgraphVariable(name)}_DATABASE_URL is required: the URL of the ${name} application role (never the owner)`);
    const publicKey = config.tenantContext.publicKey;
    if (!publicKey)
      throw new Error('TENANT_CONTEXT_PUBLIC_KEY_FILE or TENANT_CONTEXT_PUBLIC_KEY is required: the key tenant contexts are verified with');
    return startSubgraph(definition, {
      port: config.subgraphPorts[name]!,
      host: config.host,
      databaseUrl,
      contextPublicKey: await readJwk(publicKey),
      poolSize: config.poolSize,
      reusePort: config.reusePort,
      operationLimits: config.operationLimits,
      redisUrl: config.redisUrl,
      metrics: metricsSettingsOf(config, name),
      databaseFaults: config.databaseFaults,
      // Referenced services (registry `references`) are reached where the gateway reaches them.
      serviceUrl: (service) => config.subgraphRoutingUrls[service],
      logger: rootLogger,
    });
  },
  { name, logger: rootLogger, graceMs: config.shutdownGraceMs, afterClose: tracing.shutdown },
);
