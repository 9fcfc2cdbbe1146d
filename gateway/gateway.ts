/**
 * The gateway: verifies the caller, plans over the static supergraph, and sends each subgraph the
 * caller's district as a signed tenant context. It forwards no header the client sent.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ApolloGateway, RemoteGraphQLDataSource } from '@apollo/gateway';
import { GraphQLDataSourceRequestKind } from '@apollo/gateway/dist/datasources/types.js';
import { ApolloServer } from '@apollo/server';
import type { JWK } from 'jose';
import type { Logger } from 'pino';
import { leanApolloOptions } from '../http/apollo-options.ts';
import { createErrorFormatter } from '../http/errors.ts';
import { listen, type RunningServer } from '../http/server.ts';
import { TENANT_CONTEXT_HEADER, TENANT_ID_HEADER, createTenantContextSigner } from '../tenancy/tenant-context.ts';
import { createCallerVerifier, type Caller, type CallerAuthConfig } from './caller-auth.ts';
import { createDistrictGate } from './district-status.ts';
import { createSubgraphHttp } from './subgraph-http.ts';
import { directoryService } from '../config/registry.ts';

export const SUPERGRAPH_PATH = new URL('../schema/supergraph.graphql', import.meta.url);

interface GatewayContext {
  caller: Caller;
  requestId: string;
}

export interface GatewayOptions {
  port: number;
  host?: string;
  auth: CallerAuthConfig;
  /** Overrides the routing URLs of the supergraph, by subgraph name. */
  subgraphUrls: Record<string, string>;
  contextPrivateKey: JWK;
  /** How long a district's status is remembered; 0 asks the directory subgraph on every request. */
  districtStatusTtlMs: number;
  logger: Logger;
}

export async function startGateway(options: GatewayOptions): Promise<RunningServer> {
  const logger = options.logger.child({ service: 'gateway' });
  const verifyCaller = createCallerVerifier(options.auth);
  const signContext = await createTenantContextSigner(options.contextPrivateKey);
  const routingUrls = new Map<string, string>();
  const subgraphHttp = createSubgraphHttp();
  const directory = directoryService().name;
  const assertDistrictActive = createDistrictGate({
    directory,
    directoryUrl: () => routingUrls.get(directory)!,
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
      });
    },
  });
  const apollo = new ApolloServer<GatewayContext>({
    gateway,
    ...leanApolloOptions(),
    includeStacktraceInErrorResponses: false,
    formatError: createErrorFormatter(logger),
  });
  await apollo.start();

  const server = await listen({
    name: 'gateway',
    port: options.port,
    host: options.host,
    logger,
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
      const context: GatewayContext = { caller, requestId: randomUUID() };
      return apollo.executeHTTPGraphQLRequest({ httpGraphQLRequest, context: async () => context });
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
