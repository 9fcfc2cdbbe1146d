import type { SubgraphDefinition } from '../../subgraph-server/subgraph.ts';
import { loadSchema } from '../../subgraph-server/subgraph.ts';
import { entities, foreignKeys } from './entities.ts';
import { references, resolvers } from './resolvers.ts';

export const subgraph: SubgraphDefinition = {
  name: 'staff',
  typeDefs: loadSchema(import.meta.dirname),
  resolvers,
  entities,
  references,
  foreignKeys,
};
