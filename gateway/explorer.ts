/**
 * The explorer: GraphiQL as @graphql-yoga/render-graphiql renders it, one HTML page with every script, style and
 * worker inlined (no CDN: many school networks and these machines have no internet). Served by http/server.ts on
 * GET /graphql to a browser, without a token; the caller pastes one into the headers pane, pre-filled with a
 * template. Loaded only when the explorer is on (the renderer's module is 9 MB).
 */

/** What the headers pane shows first: the one header every request needs. */
export const EXPLORER_HEADERS_TEMPLATE = JSON.stringify({ Authorization: 'Bearer <paste a token>' }, null, 2);

export const EXPLORER_DEFAULT_QUERY = `# Paste a token into the Headers pane below (npm run --silent token -- --tenant north-valley).
query District {
  district {
    name
    slug
    schools {
      name
    }
  }
}
`;

export async function explorerPage(): Promise<string> {
  const { renderGraphiQL } = await import('@graphql-yoga/render-graphiql');
  return renderGraphiQL({
    title: 'K-12 graph explorer',
    endpoint: '/graphql',
    headers: EXPLORER_HEADERS_TEMPLATE,
    defaultEditorToolsVisibility: 'headers',
    // A token is a credential: it stays in the pane, never in the browser's storage.
    shouldPersistHeaders: false,
    defaultQuery: EXPLORER_DEFAULT_QUERY,
    // GET requests would need Apollo's CSRF header; POST with JSON does not.
    method: 'POST',
  });
}
