/**
 * Builds and serves one subgraph. Every request: verify the gateway's signed tenant context, open one
 * tenant transaction (tenant-transaction.ts), look up the other services' ids a mutation takes
 * (references.ts), run the whole operation inside the transaction, commit — or roll back when the
 * operation produced any error.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApolloServer, type HTTPGraphQLResponse } from '@apollo/server';
import { ApolloServerPluginInlineTraceDisabled } from '@apollo/server/plugin/disabled';
import { buildSubgraphSchema } from '@apollo/subgraph';
import type { EntityManager, EntitySchema, MikroORM } from '@mikro-orm/postgresql';
import { GraphQLError, OperationTypeNode, parse, type DocumentNode } from 'graphql';
import type { JWK } from 'jose';
import type pg from 'pg';
import type { Logger } from 'pino';
import { DEFAULT_DATABASE_FAULTS, DEFAULT_OPERATION_LIMITS, type DatabaseFaults, type OperationLimits } from '../config/config.ts';
import { leanApolloOptions } from '../http/apollo-options.ts';
import { createErrorFormatter } from '../http/errors.ts';
import { createOperationLimits, subgraphLimits } from '../http/operation-limits.ts';
import { HttpError, listen, unauthenticated, type RunningServer } from '../http/server.ts';
import { Loaders } from './loaders.ts';
import { dateLiteralsNamed } from './scalars.ts';
import {
  ReferenceChecks,
  ReferenceServiceUnavailableError,
  createReferenceClient,
  type ReferenceDeclarations,
  type ReferenceSetup,
} from './references.ts';
import { rootLogger } from '../config/logger.ts';
import { readRegistry } from '../config/registry.ts';
import { initOrm } from '../database/orm.ts';
import {
  CommitOutcomeUnknownError,
  DatabaseUnavailableError,
  inTenantTransaction,
  tenantTransactionRetry,
} from '../tenancy/tenant-transaction.ts';
import type { TenantForeignKey } from '../tenancy/tenant-table.ts';
import {
  TENANT_CONTEXT_HEADER,
  TENANT_ID_HEADER,
  TenantContextError,
  ReplayGuard,
  createForwardedContextVerifier,
  createTenantContextVerifier,
  referenceContextHeader,
  type TenantContext,
} from '../tenancy/tenant-context.ts';
import { RedisReplayGuard } from '../tenancy/redis-replay-guard.ts';
import { connectRedis } from '../tenancy/redis.ts';
import { recordDistrict } from '../telemetry/tracing.ts';
import { DatabaseMetrics, ServiceMetrics, metricsPlugin, type MetricsSettings, type RequestObservation } from '../telemetry/metrics.ts';

/** What every resolver receives. */
export interface RequestContext {
  em: EntityManager;
  tenant: TenantContext;
  loaders: Loaders;
  /** Ids of other services' entities this request's mutation takes, looked up before execution. */
  references: ReferenceChecks;
  /**
   * What the operation turned out to be, read after it ran. An object because Apollo Server runs each operation
   * with a shallow copy of the context: flags set on the copy itself would never reach the request handler.
   */
  outcome: {
    /** Set when the operation produced an error, so its transaction is rolled back. */
    failed?: boolean;
    /** Set when the operation is a query: nothing to flush at commit. */
    readOnly?: boolean;
    /** Set when a service whose ids the mutation takes could not be asked (answered 503 as the database's unavailability). */
    referenceUnavailable?: boolean;
  };
  /** What the metrics record of this request (telemetry/metrics.ts). */
  observation: RequestObservation;
}

/**
 * A subgraph's resolvers, typed where they are written by the `Resolvers` generated from its SDL
 * (`subgraphs/<name>/generated/resolvers-types.ts`, `npm run codegen`).
 */
export type SubgraphResolvers = Record<string, object | undefined>;

export interface SubgraphDefinition {
  name: string;
  typeDefs: DocumentNode;
  resolvers: SubgraphResolvers;
  entities: EntitySchema[];
  /** Mutation arguments that name other services' entities (each service listed in the registry's `references`). */
  references?: ReferenceDeclarations;
  /** Composite foreign keys between its tenant tables, declared for the schema generator (migration:create). */
  foreignKeys?: TenantForeignKey[];
}

/** Each subgraph keeps its SDL in `schema.graphql` beside its resolvers. */
export const loadSchema = (folder: string): DocumentNode => parse(readFileSync(join(folder, 'schema.graphql'), 'utf8'));

export interface SubgraphOptions {
  port: number;
  host?: string;
  /** Connection URL of this service's application role (never the owner). */
  databaseUrl: string;
  /** The gateway's public key for tenant contexts. */
  contextPublicKey: JWK;
  poolSize?: number;
  /** SO_REUSEPORT, so a replacement replica can start on the same port before this one drains. */
  reusePort?: boolean;
  logger?: Logger;
  onQuery?: (sql: string) => void;
  /** GraphQL URL of a referenced service; defaults to its registry routing URL. */
  serviceUrl?: (service: string) => string | undefined;
  /** The gateway's limits; a subgraph applies them with headroom for what query plans add (operation-limits.ts). */
  operationLimits?: OperationLimits;
  /** Redis for the replay guard shared by every replica (REDIS_URL); undefined: each process remembers its own. */
  redisUrl?: string;
  /** Prometheus metrics on a listener of their own (telemetry/metrics.ts); undefined: none. */
  metrics?: MetricsSettings;
  /** Pool and session timeouts, and the retry of whole tenant transactions (docs/operations.md). */
  databaseFaults?: DatabaseFaults;
}

/**
 * The answer to a tenant transaction the database failed: 503 with Retry-After (the gateway passes it on), or, for a
 * write whose commit outcome is unknown, an error saying so (never retried: the write may have happened).
 */
function databaseFailureAnswer(error: unknown): HttpError | undefined {
  if (error instanceof CommitOutcomeUnknownError)
    return new HttpError(
      500,
      'COMMIT_OUTCOME_UNKNOWN',
      'The database connection was lost while this change was committing: it may or may not have been saved. Read it back before trying again.',
    );
  if (!(error instanceof DatabaseUnavailableError)) return undefined;
  return error.fault === 'connection'
    ? new HttpError(503, 'DATABASE_UNAVAILABLE', 'The database is unavailable; try again shortly', { 'retry-after': '2' })
    : new HttpError(503, 'DATABASE_BUSY', 'The database is busy; try again shortly', { 'retry-after': '1' });
}

export interface RunningSubgraph extends RunningServer {
  name: string;
  orm: MikroORM;
}

class RollbackSignal extends Error {}

const REDIS_CONNECT_WAIT_MS = 2000;

/** The reference lookups of a subgraph whose mutations take other services' ids; undefined for one without. */
async function referenceSetup(definition: SubgraphDefinition, options: SubgraphOptions): Promise<ReferenceSetup | undefined> {
  const declared = [...new Set(Object.values(definition.references ?? {}).flatMap((list) => list.map((d) => d.service)))];
  if (!declared.length) return undefined;
  const registry = readRegistry();
  const allowed = registry.find((entry) => entry.name === definition.name)?.references ?? [];
  const unlisted = declared.filter((service) => !allowed.includes(service));
  // The gateway signs contexts only for the services the registry lists: anything else could never be checked.
  if (unlisted.length)
    throw new Error(`${definition.name} references ${unlisted.join(', ')}, which its registry entry does not list under "references"`);
  return {
    declarations: definition.references!,
    client: createReferenceClient(),
    serviceUrl(service) {
      const url = options.serviceUrl?.(service) ?? registry.find((entry) => entry.name === service)?.routingUrl;
      if (!url) throw new Error(`no URL for referenced service ${service}`);
      return url;
    },
    verifyForwarded: await createForwardedContextVerifier(options.contextPublicKey),
  };
}

export async function startSubgraph(definition: SubgraphDefinition, options: SubgraphOptions): Promise<RunningSubgraph> {
  const logger = (options.logger ?? rootLogger).child({ service: definition.name });
  const orm = await initOrm({
    service: definition.name,
    entities: definition.entities,
    clientUrl: options.databaseUrl,
    poolSize: options.poolSize,
    onQuery: options.onQuery,
    faults: options.databaseFaults ?? DEFAULT_DATABASE_FAULTS,
  });
  const transactionRetry = tenantTransactionRetry(options.databaseFaults ?? DEFAULT_DATABASE_FAULTS);
  transactionRetry.onRetry(({ attempt, delay }) => logger.warn({ attempt, delay }, 'tenant transaction retried after a database fault'));
  const replayRedis = options.redisUrl ? connectRedis(options.redisUrl, logger, 'replay guard') : undefined;
  // Until connected the guard refuses every context: give the connection a moment before serving.
  await replayRedis?.ready(REDIS_CONNECT_WAIT_MS);
  const verifyContext = await createTenantContextVerifier(
    options.contextPublicKey,
    definition.name,
    replayRedis ? new RedisReplayGuard(replayRedis.redis, { onUnavailable: replayRedis.failed }) : new ReplayGuard(),
  );
  const references = await referenceSetup(definition, options);
  const serviceMetrics = options.metrics && new ServiceMetrics({ service: definition.name, ...options.metrics });
  const databaseMetrics =
    serviceMetrics &&
    new DatabaseMetrics(serviceMetrics.registry, async () => {
      // The pg pool MikroORM owns (the one tenant transactions take their connections from).
      const pool = (await orm.em.getConnection().getNativeClient()) as pg.Pool | undefined;
      return pool && { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount, max: pool.options.max ?? 0 };
    });
  const onTransactionEnd =
    databaseMetrics && ((seconds: number, committed: boolean) => databaseMetrics.transactionFinished(seconds, committed));
  const lean = leanApolloOptions();
  // The generated resolver types are stricter than @apollo/subgraph's GraphQLResolverMap (typed parents and
  // arguments, three-argument __resolveReference), so they do not assign to it: the one cast, at the library's edge.
  const schema = buildSubgraphSchema([{ typeDefs: definition.typeDefs, resolvers: definition.resolvers as never }]);
  const operationLimits = options.operationLimits ?? DEFAULT_OPERATION_LIMITS;
  const limits = createOperationLimits(subgraphLimits(operationLimits));
  const apollo = new ApolloServer<RequestContext>({
    schema,
    allowBatchedHttpRequests: false,
    includeStacktraceInErrorResponses: false,
    formatError: createErrorFormatter(logger),
    validationRules: [dateLiteralsNamed],
    ...lean,
    // The gateway never sends a subgraph persisted queries, and a shared hash cache would tell one district what
    // text another sent: off.
    persistedQueries: false,
    plugins: [
      ...lean.plugins,
      // Traces would describe the operation to whoever asks for them; the gateway needs none.
      ApolloServerPluginInlineTraceDisabled(),
      metricsPlugin<RequestContext>((context) => context.observation),
      {
        async requestDidStart() {
          return {
            async didResolveOperation({ operation, contextValue, schema, document, request }) {
              contextValue.outcome.readOnly = operation?.operation === OperationTypeNode.QUERY;
              try {
                if (operation) await contextValue.references.lookUp(schema, document, operation, request.variables);
              } catch (error) {
                if (error instanceof TenantContextError) throw new GraphQLError(error.message, { extensions: { code: 'UNAUTHENTICATED' } });
                if (error instanceof ReferenceServiceUnavailableError) contextValue.outcome.referenceUnavailable = true;
                throw error;
              }
            },
            async didEncounterErrors({ contextValue }) {
              contextValue.outcome.failed = true;
            },
          };
        },
      },
    ],
  });
  await apollo.start();

  const server = await listen({
    name: definition.name,
    port: options.port,
    host: options.host,
    reusePort: options.reusePort,
    logger,
    maxResponseBytes: operationLimits.maxResponseBytes,
    metrics: serviceMetrics && { service: serviceMetrics, port: options.metrics!.port },
    ready: async () => {
      await orm.em.getConnection().execute('select 1');
      return true;
    },
    async handle(httpGraphQLRequest, _incoming, observation) {
      const header = (name: string) => httpGraphQLRequest.headers.get(name);
      let tenant: TenantContext;
      try {
        tenant = await verifyContext(header(TENANT_CONTEXT_HEADER), header(TENANT_ID_HEADER));
      } catch (error) {
        if (error instanceof TenantContextError) throw unauthenticated(error.message);
        throw error;
      }
      recordDistrict(tenant.tenantId);
      observation.district = tenant.tenantId;
      // Before the tenant transaction: a refused operation costs no connection and no SQL.
      limits.preflight(httpGraphQLRequest, schema, true);
      let response: HTTPGraphQLResponse | undefined;
      const outcome: RequestContext['outcome'] = {};
      try {
        // Outside the transaction: a retried one reuses the lookups (references.ts).
        const checks = new ReferenceChecks(references, tenant, (service) => header(referenceContextHeader(service)) ?? undefined);
        await inTenantTransaction(
          orm,
          tenant.tenantId,
          async (em) => {
            // A retried transaction runs the operation afresh: nothing of a failed attempt's outcome carries over.
            outcome.failed = undefined;
            const context: RequestContext = {
              em,
              tenant,
              loaders: new Loaders(em, () => outcome.readOnly === true),
              references: checks,
              outcome,
              observation,
            };
            response = await apollo.executeHTTPGraphQLRequest({ httpGraphQLRequest, context: async () => context });
            if (outcome.failed) throw new RollbackSignal();
          },
          // Known before the first statement: didResolveOperation runs before any resolver.
          { readOnly: () => outcome.readOnly === true, onEnd: onTransactionEnd, retry: transactionRetry },
        );
      } catch (error) {
        const answer = databaseFailureAnswer(error);
        if (answer) {
          logger.warn({ code: answer.code }, 'tenant transaction failed on the database');
          throw answer;
        }
        if (!(error instanceof RollbackSignal)) throw error;
      }
      if (outcome.referenceUnavailable)
        throw new HttpError(503, 'DATABASE_UNAVAILABLE', 'A service this change depends on is unavailable; try again shortly', {
          'retry-after': '2',
        });
      return response!;
    },
  });
  logger.info({ url: server.url }, 'subgraph ready');

  return {
    ...server,
    name: definition.name,
    orm,
    async close(graceMs) {
      await server.close(graceMs);
      await apollo.stop();
      await references?.client.close();
      await orm.close();
      await replayRedis?.close();
    },
  };
}
