/**
 * `node load/bench/service.ts <gateway|districts|students|staff>`: one service of the configured platform
 * in a process of its own, as deployed (one deployment per service), on the ports of the environment. The
 * database must already be provisioned and migrated (a running `npm start` on the same DATA_DIR owns it);
 * the bench starts the split topology with this (`npm run bench -- --split`).
 */
import '../../config/node-version.ts';
import { pino } from 'pino';
import { readConfig } from '../../config/config.ts';
import { startGateway } from '../../gateway/gateway.ts';
import { devIssuerOf, loadOrCreateKeys } from '../../dev/keys.ts';
import { resolveCallerAuth } from '../../gateway/caller-auth.ts';
import { startSubgraph } from '../../subgraph-server/subgraph.ts';
import { loadSubgraphs } from '../../subgraph-server/registry.ts';
import { openServiceDatabases, type ServiceName } from '../seed/databases.ts';

const subgraphs = await loadSubgraphs();
const name = process.argv[2];
const definition = subgraphs.find((s) => s.name === name);
if (name !== 'gateway' && !definition) {
  console.error(`usage: service.ts <gateway|${subgraphs.map((s) => s.name).join('|')}>`);
  process.exit(2);
}
const config = readConfig();
const logger = pino({ level: process.env.LOG_LEVEL ?? 'warn', base: undefined });
const keys = await loadOrCreateKeys(config.dataDir);
const host = config.host === '0.0.0.0' ? '127.0.0.1' : config.host;
let running: { close(): Promise<void> };
if (definition) {
  const databases = await openServiceDatabases(config);
  running = await startSubgraph(definition, {
    port: config.subgraphPorts[definition.name]!,
    host: config.host,
    databaseUrl: databases.byService[definition.name as ServiceName].appUrl,
    contextPublicKey: keys.context.publicJwk,
    poolSize: config.poolSize,
    operationLimits: config.operationLimits,
    logger,
  });
} else {
  running = await startGateway({
    port: config.gatewayPort,
    host: config.host,
    auth: await resolveCallerAuth(config, devIssuerOf(keys)),
    subgraphUrls: Object.fromEntries(subgraphs.map((s) => [s.name, `http://${host}:${config.subgraphPorts[s.name]}/graphql`])),
    contextPrivateKey: keys.context.privateJwk,
    districtStatusTtlMs: config.districtStatusTtlMs,
    operationLimits: config.operationLimits,
    districtConcurrency: config.districtConcurrency,
    logger,
  });
}
const stop = () => void running.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
