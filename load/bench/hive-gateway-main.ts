/**
 * Hive Gateway (@graphql-hive/gateway-runtime) in front of the platform's subgraphs, doing the same work per request
 * as gateway/gateway.ts: the caller's JWT verified by the project's verifier, the district gate, and a tenant context
 * signed per subgraph fetch (audience = that subgraph, fresh jti), plus one per referenced service for a mutation.
 * No client header reaches a subgraph (Hive forwards none unless told to). Started by hive-gateway.ts in a process
 * of its own, so bench part 7 can read its CPU time from /proc:
 * `node load/bench/hive-gateway-main.ts <port>`, configured like the platform (same environment, same data folder).
 */
import '../../config/node-version.ts';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createGatewayRuntime, type GatewayPlugin } from '@graphql-hive/gateway-runtime';
import { readConfig } from '../../config/config.ts';
import { SUPERGRAPH_PATH, directoryService, readRegistry } from '../../config/registry.ts';
import { devIssuerOf, loadOrCreateKeys } from '../../dev/keys.ts';
import { createCallerVerifier, resolveCallerAuth, type Caller } from '../../gateway/caller-auth.ts';
import { createDistrictGate } from '../../gateway/district-status.ts';
import { createSubgraphHttp } from '../../gateway/subgraph-http.ts';
import { HttpError } from '../../http/server.ts';
import {
  TENANT_CONTEXT_HEADER,
  TENANT_ID_HEADER,
  createTenantContextSigner,
  referenceContextHeader,
  type TenantContext,
} from '../../tenancy/tenant-context.ts';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port < 1) throw new Error('usage: node load/bench/hive-gateway-main.ts <port>');

const config = readConfig();
const keys = await loadOrCreateKeys(config.dataDir);
const verifyCaller = createCallerVerifier(await resolveCallerAuth(config, devIssuerOf(keys)));
const signContext = await createTenantContextSigner(keys.context.privateJwk);
const subgraphHttp = createSubgraphHttp({ maxResponseBytes: config.operationLimits.maxResponseBytes });
const directory = directoryService().name;
const assertDistrictActive = createDistrictGate({
  directory,
  directoryUrl: () => config.subgraphRoutingUrls[directory]!,
  post: subgraphHttp.post,
  sign: signContext,
  ttlMs: config.districtStatusTtlMs,
});

// The committed supergraph with each subgraph's routing URL replaced by where the platform runs it; a fetch's URL
// then names its subgraph (the context's audience).
const subgraphByUrl = new Map<string, string>();
let supergraph = readFileSync(SUPERGRAPH_PATH, 'utf8');
for (const [name, url] of Object.entries(config.subgraphRoutingUrls)) {
  subgraphByUrl.set(url, name);
  supergraph = supergraph.replace(new RegExp(`(@join__graph\\(name: "${name}", url: )"[^"]*"`), `$1"${url}"`);
}
const referencesOf = new Map(readRegistry().map((entry) => [entry.name, entry.references ?? []]));

interface Verified {
  caller: Caller;
  requestId: string;
}
const verifiedRequests = new WeakMap<Request, Verified>();
const MUTATION_BODY = /^\{"query":"\s*mutation\b/;

const errorResponse = (error: HttpError) =>
  Response.json(
    { errors: [{ message: error.message, extensions: { code: error.code } }] },
    { status: error.status, headers: error.status === 401 ? { 'www-authenticate': 'Bearer error="invalid_token"' } : {} },
  );

const tenantWork: GatewayPlugin = {
  // Before any GraphQL work: the caller's token, then the district's status.
  async onRequest({ request, url, endResponse }) {
    if (url.pathname !== '/graphql') return;
    try {
      const caller = await verifyCaller(request.headers.get('authorization') ?? undefined);
      await assertDistrictActive(caller.tenantId);
      verifiedRequests.set(request, { caller, requestId: randomUUID() });
    } catch (error) {
      if (error instanceof HttpError) endResponse(errorResponse(error));
      else throw error;
    }
  },
  // Every subgraph fetch: headers of our own only (none of the client's), a context signed for that subgraph.
  async onFetch({ url, options, setOptions, context }) {
    const verified = 'request' in context ? verifiedRequests.get(context.request) : undefined;
    const subgraph = subgraphByUrl.get(url);
    if (!verified || !subgraph) return;
    const tenant: TenantContext = { tenantId: verified.caller.tenantId, subject: verified.caller.subject, requestId: verified.requestId };
    const headers: Record<string, string> = {
      ...(options.headers as Record<string, string>),
      [TENANT_ID_HEADER]: tenant.tenantId,
      [TENANT_CONTEXT_HEADER]: await signContext(tenant, subgraph),
    };
    const referenced = referencesOf.get(subgraph) ?? [];
    if (referenced.length && typeof options.body === 'string' && MUTATION_BODY.test(options.body)) {
      for (const service of referenced) headers[referenceContextHeader(service)] = await signContext(tenant, service);
    }
    setOptions({ ...options, headers });
  },
};

const runtime = createGatewayRuntime({
  supergraph,
  plugins: () => [tenantWork],
  logging: 'error',
  landingPage: false,
  graphiql: false,
});
// The runtime is Node's request listener (it answers through `res` and resolves when done).
const server = createServer((req, res) => void runtime(req, res));
server.keepAliveTimeout = 65_000;
server.listen({ port, host: '127.0.0.1', backlog: 4096 }, () => console.log(`hive gateway on http://127.0.0.1:${port}/graphql`));

const stop = () => {
  server.close();
  server.closeAllConnections();
  void Promise.all([runtime.dispose(), subgraphHttp.close()]).finally(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
