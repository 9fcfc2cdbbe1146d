/** Apollo Server options the gateway and every subgraph share: no per-request work we do not use. */
import { ApolloServerPluginCacheControlDisabled } from '@apollo/server/plugin/disabled';
import type { FormattedExecutionResult } from 'graphql';

/** A fresh object per server: Apollo appends its default plugins to the array it is given. */
export const leanApolloOptions = () => ({
  // Compact JSON: Apollo's default pretty-prints every response (two-space indent), costing time and bytes.
  stringifyResult: (result: FormattedExecutionResult) => JSON.stringify(result),
  // We send no cache hints; the cache-control plugin would otherwise run a hook on every resolved field.
  plugins: [ApolloServerPluginCacheControlDisabled()],
  // Apollo would stop itself on SIGINT/SIGTERM, failing the requests still in flight; each service drains
  // its HTTP server first and stops Apollo after (http/lifecycle.ts).
  stopOnTerminationSignals: false,
});
