/**
 * The subgraphs of the service registry, loaded by name: each `subgraphs/<name>/index.ts` exports its
 * definition as `subgraph`. Nothing else lists them.
 */
import { pathToFileURL } from 'node:url';
import { projectPath, readRegistry, type SubgraphEntry } from '../config/registry.ts';
import type { SubgraphDefinition } from './subgraph.ts';

export async function loadSubgraph(entry: SubgraphEntry): Promise<SubgraphDefinition> {
  const module = (await import(pathToFileURL(projectPath(`subgraphs/${entry.name}/index.ts`)).href)) as { subgraph?: SubgraphDefinition };
  if (module.subgraph?.name !== entry.name)
    throw new Error(`subgraphs/${entry.name}/index.ts must export its definition as \`subgraph\` with name "${entry.name}"`);
  return module.subgraph;
}

/** Every registered subgraph, in registry order. */
export const loadSubgraphs = (entries = readRegistry()): Promise<SubgraphDefinition[]> => Promise.all(entries.map(loadSubgraph));

export async function loadSubgraphByName(name: string): Promise<SubgraphDefinition> {
  const entry = readRegistry().find((s) => s.name === name);
  if (!entry)
    throw new Error(
      `unknown subgraph "${name}": registered are ${readRegistry()
        .map((s) => s.name)
        .join(', ')}`,
    );
  return loadSubgraph(entry);
}
