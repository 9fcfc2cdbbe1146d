import type { InferEntity } from '@mikro-orm/core';
import { GraphQLError } from 'graphql';
import type { RequestContext } from '../../subgraph-server/subgraph.ts';
import type { Resolvers } from './generated/resolvers-types.ts';
import { District, School } from './entities.ts';
import { listSize, requiredText } from '../../subgraph-server/input.ts';
import { graphqlEnumValue } from '../../subgraph-server/graphql-enum.ts';

const MAX_SCHOOLS = 100;
const schoolsByName = (em: RequestContext['em'], first: unknown) =>
  em.find(School, {}, { orderBy: { name: 'asc', id: 'asc' }, limit: listSize(first, MAX_SCHOOLS) });

type DistrictRow = InferEntity<typeof District>;
type SchoolRow = InferEntity<typeof School>;

export const resolvers: Resolvers = {
  Query: {
    async district(_root, _args, { em, tenant }) {
      const district = await em.findOne(District, { tenantId: tenant.tenantId });
      // Only reachable when the district row was never registered: a configuration fault, not input.
      if (!district) throw new GraphQLError('District not found', { extensions: { code: 'NOT_FOUND' } });
      return district;
    },
    schools: (_root, { first }, { em }) => schoolsByName(em, first),
    school: (_root, { id }, { loaders }) => loaders.one(School).load(id),
  },
  Mutation: {
    async createSchool(_root, { input }, { em }) {
      const school = em.create(School, { name: requiredText(input.name, 'name', 200) });
      await em.flush();
      return school;
    },
  },
  District: {
    id: (district: DistrictRow) => district.tenantId,
    status: (district: DistrictRow) => graphqlEnumValue(district.status),
    schools: (_district, { first }, { em }) => schoolsByName(em, first),
    __resolveReference: (ref: { id: string }, { tenant, em }: RequestContext) =>
      ref.id === tenant.tenantId ? em.findOne(District, { tenantId: ref.id }) : null,
  },
  School: {
    __resolveReference: (ref: { id: string }, { loaders }: RequestContext) => loaders.one<SchoolRow>(School).load(ref.id),
  },
};
