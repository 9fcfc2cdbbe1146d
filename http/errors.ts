/** What a caller may see of an error: GraphQL errors we raised on purpose, and nothing of anything else. */
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { unwrapResolverError } from '@apollo/server/errors';
import type { Logger } from 'pino';

const SAFE_CODES = new Set([
  'BAD_USER_INPUT',
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_REQUEST',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
  'OPERATION_RESOLUTION_FAILURE',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'NOT_FOUND',
  'OPERATION_LIMIT_EXCEEDED',
  // A subgraph's database refusals (subgraph-server/subgraph.ts), passed on by the gateway (gateway/subgraph-source.ts).
  'DATABASE_BUSY',
  'DATABASE_UNAVAILABLE',
  'COMMIT_OUTCOME_UNKNOWN',
  'DISTRICT_RATE_LIMITED',
  'DISTRICT_CONCURRENCY_LIMITED',
]);

export const badInput = (message: string) => new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT' } });
const isBadInput = (error: unknown) => error instanceof GraphQLError && error.extensions.code === 'BAD_USER_INPUT';

export function createErrorFormatter(logger: Logger) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    // A literal a custom scalar refuses (a `Date` that is not one) fails validation: it is the caller's input.
    if (formatted.extensions?.code === 'GRAPHQL_VALIDATION_FAILED' && isBadInput((error as GraphQLError | undefined)?.originalError)) {
      formatted = { ...formatted, extensions: { ...formatted.extensions, code: 'BAD_USER_INPUT' } };
    }
    const code = formatted.extensions?.code;
    // Apollo gives every error that was not raised as a GraphQLError the code INTERNAL_SERVER_ERROR,
    // so the code alone tells a deliberate, safe message from an accident.
    if (typeof code === 'string' && SAFE_CODES.has(code)) {
      const { stacktrace: _dropped, ...extensions } = formatted.extensions ?? {};
      return { ...formatted, extensions };
    }
    // Apollo's own refusals of a malformed request (an APQ text that does not match its hash) carry HTTP 400 and no
    // code: the caller's mistake, in Apollo's words. A resolver's error always has an original error.
    if (error instanceof GraphQLError && !error.originalError && error.extensions.http?.status === 400) {
      return { message: formatted.message, extensions: { code: 'BAD_REQUEST' } };
    }
    logger.error({ err: unwrapResolverError(error), path: formatted.path }, 'resolver error');
    return { message: 'Internal server error', path: formatted.path, extensions: { code: 'INTERNAL_SERVER_ERROR' } };
  };
}
