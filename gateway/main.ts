/**
 * `npm run start:gateway`: the gateway alone, configured by the environment (README, Configuration). It needs
 * the tenant-context private key (TENANT_CONTEXT_PRIVATE_KEY_FILE or TENANT_CONTEXT_PRIVATE_KEY), the caller
 * token issuer (JWKS_URL or JWKS_FILE with JWT_ISSUER and JWT_AUDIENCE) and its subgraphs' URLs
 * (`<NAME>_ROUTING_URL`, or HOST and each subgraph's port). SIGTERM drains it.
 */
import '../config/node-version.ts';
import { readConfig, readJwk } from '../config/config.ts';
import { rootLogger } from '../config/logger.ts';
import { runService } from '../http/lifecycle.ts';
import { TRACING_NOT_PRELOADED, startTracing } from '../telemetry/tracing.ts';
import { metricsSettingsOf } from '../telemetry/metrics.ts';
import { resolveCallerAuth } from './caller-auth.ts';
import { startGateway } from './gateway.ts';

const config = readConfig();
const tracing = startTracing(config.tracing, { serviceName: 'gateway', followCallerSampling: false });
if (!tracing.preloaded) rootLogger.warn(TRACING_NOT_PRELOADED);
await runService(
  async () => {
    const privateKey = config.tenantContext.privateKey;
    if (!privateKey)
      throw new Error(
        'TENANT_CONTEXT_PRIVATE_KEY_FILE or TENANT_CONTEXT_PRIVATE_KEY is required: the key the gateway signs tenant contexts with',
      );
    return startGateway({
      port: config.gatewayPort,
      host: config.host,
      auth: await resolveCallerAuth(config),
      subgraphUrls: config.subgraphRoutingUrls,
      contextPrivateKey: await readJwk(privateKey),
      districtStatusTtlMs: config.districtStatusTtlMs,
      supergraph: config.supergraph,
      reusePort: config.reusePort,
      operationLimits: config.operationLimits,
      districtConcurrency: config.districtConcurrency,
      subgraphFetch: config.subgraphFetch,
      districtRate: config.districtRate,
      frontend: config.frontend,
      redisUrl: config.redisUrl,
      metrics: metricsSettingsOf(config, 'gateway'),
      logger: rootLogger,
    });
  },
  { name: 'gateway', logger: rootLogger, graceMs: config.shutdownGraceMs, afterClose: tracing.shutdown },
);
