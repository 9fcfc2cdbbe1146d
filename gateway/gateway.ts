/**
 * The gateway: verifies the caller, plans over the static supergraph, and sends each subgraph the
 * caller's district as a signed tenant context. It forwards no header the client sent.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ApolloGateway, RemoteGraphQLDataSource } from '@apollo/gateway';
import { GraphQLDataSourceRequestKind } from '@apollo/gateway/dist/datasources/types.js';
import { ApolloServer } from '@apollo/server';
import type { GraphQLSchema } from 'graphql';
import type { JWK } from 'jose';
import type { Logger } from 'pino';
import type { DistrictConcurrency, OperationLimits } from '../config/config.ts';
import { leanApolloOptions } from '../http/apollo-options.ts';
import { createErrorFormatter } from '../http/errors.ts';
import { createOperationLimits } from '../http/operation-limits.ts';
import { HttpError, OPERATION_LIMIT_EXCEEDED, listen, responseTooLarge, type RunningServer } from '../http/server.ts';
import { TENANT_CONTEXT_HEADER, TENANT_ID_HEADER, createTenantContextSigner } from '../tenancy/tenant-context.ts';
import { createCallerVerifier, type Caller, type CallerAuthConfig } from './caller-auth.ts';
import { createDistrictConcurrency } from './district-concurrency.ts';
import { createDistrictGate } from './district-status.ts';
import { SubgraphResponseTooLargeError, createSubgraphHttp } from './subgraph-http.ts';

export const SUPERGRAPH_PATH = new URL('../schema/supergraph.graphql', import.meta.url);

interface GatewayContext {
  caller: Caller;
  requestId: string;
  /**
   * `refusal` is set when a subgraph refused a fetch for a limit (or sent too much): the whole request becomes that
   * 400. A holder object, because Apollo hands the data sources a shallow copy of the context.
   */
  limits: { refusal?: HttpError };
}

export interface GatewayOptions {
  port: number;
  host?: string;
  auth: CallerAuthConfig;
  /** Overrides the routing URLs of the supergraph, by subgraph name. */
  subgraphUrls: Record<string, string>;
  contextPrivateKey: JWK;
  /** How long a district's status is remembered; 0 asks the districts subgraph on every request. */
  districtStatusTtlMs: number;
  operationLimits: OperationLimits;
  districtConcurrency: DistrictConcurrency;
  logger: Logger;
}

/** The refusal a subgraph fetch failed with, when it was a limit: a subgraph's 400 OPERATION_LIMIT_EXCEEDED, or a body over the cap. */
function limitRefusalOf(error: unknown, maxResponseBytes: number): HttpError | undefined {
  if (error instanceof SubgraphResponseTooLargeError) return responseTooLarge(maxResponseBytes);
  const body = (error as { extensions?: { response?: { body?: { errors?: { message?: unknown; extensions?: { code?: unknown } }[] } } } })?.extensions?.response?.body;
  const refused = body?.errors?.find((e) => e.extensions?.code === OPERATION_LIMIT_EXCEEDED);
  return typeof refused?.message === 'string' ? new HttpError(400, OPERATION_LIMIT_EXCEEDED, refused.message) : undefined;
}

export async function startGateway(options: GatewayOptions): Promise<RunningServer> {
  const logger = options.logger.child({ service: 'gateway' });
  const verifyCaller = createCallerVerifier(options.auth);
  const signContext = await createTenantContextSigner(options.contextPrivateKey);
  const routingUrls = new Map<string, string>();
  const { maxResponseBytes } = options.operationLimits;
  const subgraphHttp = createSubgraphHttp({ maxResponseBytes });
  const limits = createOperationLimits(options.operationLimits);
  const runForDistrict = createDistrictConcurrency(options.districtConcurrency);
  const assertDistrictActive = createDistrictGate({
    districtsUrl: () => routingUrls.get('districts')!,
    post: subgraphHttp.post,
    sign: signContext,
    ttlMs: options.districtStatusTtlMs,
  });

  const gateway = new ApolloGateway({
    supergraphSdl: readFileSync(SUPERGRAPH_PATH, 'utf8'),
    logger,
    buildService({ name, url }) {
      const routingUrl = options.subgraphUrls[name] ?? url!;
      routingUrls.set(name, routingUrl);
      return new RemoteGraphQLDataSource<GatewayContext>({
        url: routingUrl,
        fetcher: subgraphHttp.fetcher as never,
        async willSendRequest({ request, kind, ...rest }) {
          // Health checks and schema loading carry no tenant.
          if (kind !== GraphQLDataSourceRequestKind.INCOMING_OPERATION) return;
          const { caller, requestId } = (rest as { context: GatewayContext }).context;
          request.http!.headers.set(TENANT_ID_HEADER, caller.tenantId);
          request.http!.headers.set(
            TENANT_CONTEXT_HEADER,
            await signContext({ tenantId: caller.tenantId, subject: caller.subject, requestId }, name),
          );
        },
        didEncounterError(error, _fetchRequest, _fetchResponse, context) {
          const refusal = limitRefusalOf(error, maxResponseBytes);
          if (refusal && context) (context as GatewayContext).limits.refusal ??= refusal;
          throw error;
        },
      });
    },
  });
  const lean = leanApolloOptions();
  const apollo = new ApolloServer<GatewayContext>({
    gateway,
    ...lean,
    plugins: [...lean.plugins, limits.plugin<GatewayContext>()],
    allowBatchedHttpRequests: false,
    includeStacktraceInErrorResponses: false,
    formatError: createErrorFormatter(logger),
  });
  // The API schema the clients' operations are checked against before Apollo sees them (set as the gateway loads).
  let apiSchema: GraphQLSchema | undefined;
  gateway.onSchemaLoadOrUpdate(({ apiSchema: loaded }) => (apiSchema = loaded));
  await apollo.start();
  if (!apiSchema) throw new Error('the gateway started without an API schema');

  const server = await listen({
    name: 'gateway',
    port: options.port,
    host: options.host,
    logger,
    maxResponseBytes,
    async ready() {
      const answers = await Promise.all(
        [...routingUrls.values()].map((url) =>
          fetch(new URL('/health/ready', url), { signal: AbortSignal.timeout(2000) }).then((r) => r.ok, () => false),
        ),
      );
      return routingUrls.size > 0 && answers.every(Boolean);
    },
    async handle(httpGraphQLRequest) {
      const caller = await verifyCaller(httpGraphQLRequest.headers.get('authorization'));
      await assertDistrictActive(caller.tenantId);
      limits.preflight(httpGraphQLRequest, apiSchema!, false);
      return runForDistrict(caller.tenantId, async () => {
        const context: GatewayContext = { caller, requestId: randomUUID(), limits: {} };
        const response = await apollo.executeHTTPGraphQLRequest({ httpGraphQLRequest, context: async () => context });
        if (context.limits.refusal) throw context.limits.refusal;
        return response;
      });
    },
  });
  logger.info({ url: server.url }, 'gateway ready');
  return {
    ...server,
    async close() {
      await server.close();
      await apollo.stop();
      await subgraphHttp.close();
    },
  };
}
