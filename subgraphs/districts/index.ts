import type { SubgraphDefinition } from '../kit/subgraph.ts';
import { loadSchema } from '../kit/subgraph.ts';
import { entities } from './entities.ts';
import { resolvers } from './resolvers.ts';

export const districts: SubgraphDefinition = {
  name: 'districts',
  typeDefs: loadSchema(import.meta.dirname),
  resolvers,
  entities,
};
