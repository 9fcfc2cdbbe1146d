/**
 * How the gateway's query plan reaches one subgraph: a GraphQLDataSource posting the planned operation over
 * subgraph-http.ts with headers of its own only (content type, and for an operation the tenant headers
 * `headersFor` gives), never one the client sent. It answers and fails as Apollo's RemoteGraphQLDataSource does
 * (a non-2xx answer becomes a GraphQLError carrying the response; 401 and 403 keep their codes), without the
 * node-fetch Request, Headers and legacy URL parsing that class builds around every fetch even with a `fetcher`
 * of our own, none of which is used.
 */
import type { GraphQLDataSource, GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import { GraphQLDataSourceRequestKind } from '@apollo/gateway/dist/datasources/types.js';
import { GraphQLError } from 'graphql';
import type { SubgraphHttp, SubgraphResponse } from './subgraph-http.ts';

export interface SubgraphSourceOptions<TContext extends object> {
  url: string;
  post: SubgraphHttp['post'];
  /** The headers an operation of the incoming request carries, for its planned `query` text. */
  headersFor(context: TContext, query: string): Promise<Record<string, string>>;
  /** Told of every failed fetch before its error is thrown (the gateway notes limit refusals). */
  onError?(error: unknown, context: TContext | undefined): void;
}

type GatewayGraphQLResponse = Awaited<ReturnType<GraphQLDataSource['process']>>;

const JSON_TYPES = /^application\/(json|graphql-response\+json)/;

/** The body as Apollo's data source reads it: JSON for a JSON content type, text otherwise. */
function bodyOf(response: SubgraphResponse): unknown {
  const type = response.headers['content-type'];
  return typeof type === 'string' && JSON_TYPES.test(type) ? response.json() : response.text;
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null;

/**
 * Refusals a subgraph answers for its database (subgraph-server/subgraph.ts), passed on to the caller with their
 * message: the fields of that subgraph err with this code, and a request that failed whole this way is answered 503.
 */
export const DATABASE_FAILURE_CODES = new Set(['DATABASE_BUSY', 'DATABASE_UNAVAILABLE', 'COMMIT_OUTCOME_UNKNOWN']);

/** A subgraph's refusal for its database, as the error of that subgraph's fields; `retryAfter` as the subgraph sent it. */
export class SubgraphDatabaseFailure extends GraphQLError {
  readonly code: string;
  readonly retryAfter: string | undefined;
  constructor(message: string, code: string, retryAfter: string | undefined) {
    super(message, { extensions: { code } });
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

function errorFrom(url: string, response: SubgraphResponse): GraphQLError {
  const body = bodyOf(response);
  const extensions: Record<string, unknown> = { response: { url, status: response.status, statusText: '', body } };
  if (response.status === 401) extensions.code = 'UNAUTHENTICATED';
  else if (response.status === 403) extensions.code = 'FORBIDDEN';
  else {
    const first =
      isObject(body) && Array.isArray(body.errors) ? (body.errors[0] as { message?: unknown; extensions?: { code?: unknown } }) : undefined;
    const code = first?.extensions?.code;
    if (typeof code === 'string' && DATABASE_FAILURE_CODES.has(code) && typeof first?.message === 'string') {
      const retryAfter = response.headers['retry-after'];
      return new SubgraphDatabaseFailure(first.message, code, typeof retryAfter === 'string' ? retryAfter : undefined);
    }
  }
  return new GraphQLError(`${response.status}: `, { extensions });
}

export class SubgraphSource<TContext extends object> implements GraphQLDataSource {
  readonly #options: SubgraphSourceOptions<TContext>;
  constructor(options: SubgraphSourceOptions<TContext>) {
    this.#options = options;
  }

  async process(options: GraphQLDataSourceProcessOptions): Promise<GatewayGraphQLResponse> {
    const { url, post, headersFor, onError } = this.#options;
    const { query, variables, operationName, extensions } = options.request;
    if (!query) throw new Error('Missing query');
    const incoming = options.kind === GraphQLDataSourceRequestKind.INCOMING_OPERATION;
    const context = incoming ? (options.context as TContext) : undefined;
    try {
      // Health checks and schema loading carry no tenant.
      const headers = context ? await headersFor(context, query) : { 'content-type': 'application/json' };
      // `query` first: subgraph-http.ts tells queries from writes by it.
      const response = await post(url, headers, JSON.stringify({ query, variables, operationName, extensions }));
      if (!response.ok) throw errorFrom(url, response);
      const body = bodyOf(response);
      if (!isObject(body)) throw new Error(`Expected JSON response body, but received: ${String(body)}`);
      return body;
    } catch (error) {
      onError?.(error, context);
      throw error;
    }
  }
}
