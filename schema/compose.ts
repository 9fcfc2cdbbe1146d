/**
 * Composes the subgraph SDL files into the static supergraph the gateway serves.
 * `npm run compose` writes schema/supergraph.graphql; a test fails when it is stale.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { composeServices } from '@apollo/composition';
import { parse } from 'graphql';
import { SUPERGRAPH_PATH, projectPath, readRegistry } from '../config/registry.ts';

/** `proposedSdl` (by subgraph name) replaces registered SDL files: `npm run schema:check -- --subgraph name=file`. */
export function composeSupergraph(proposedSdl: Record<string, string> = {}): string {
  const result = composeServices(
    readRegistry().map((entry) => ({
      name: entry.name,
      typeDefs: parse(proposedSdl[entry.name] ?? readFileSync(projectPath(entry.schema), 'utf8')),
      url: entry.routingUrl,
    })),
  );
  if (result.errors) throw new Error(`composition failed:\n${result.errors.map((e) => e.message).join('\n')}`);
  return `${result.supergraphSdl.trim()}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const path = SUPERGRAPH_PATH;
  writeFileSync(path, composeSupergraph());
  console.log(`wrote ${path}`);
}
