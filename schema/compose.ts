/**
 * Composes the subgraph SDL files into the static supergraph the gateway serves.
 * `npm run compose` writes schema/supergraph.graphql; a test fails when it is stale.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { composeServices } from '@apollo/composition';
import { subgraphs } from '../subgraphs/index.ts';
import { DEFAULT_SUBGRAPH_PORTS } from '../gateway/config.ts';

export function composeSupergraph(): string {
  const result = composeServices(
    subgraphs.map((subgraph) => ({
      name: subgraph.name,
      typeDefs: subgraph.typeDefs,
      url: `http://127.0.0.1:${DEFAULT_SUBGRAPH_PORTS[subgraph.name]}/graphql`,
    })),
  );
  if (result.errors) throw new Error(`composition failed:\n${result.errors.map((e) => e.message).join('\n')}`);
  return `${result.supergraphSdl.trim()}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const path = fileURLToPath(new URL('./supergraph.graphql', import.meta.url));
  writeFileSync(path, composeSupergraph());
  console.log(`wrote ${path}`);
}
