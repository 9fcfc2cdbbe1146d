import type { InferEntity } from '@mikro-orm/core';
import { GraphQLError } from 'graphql';
import type { RequestContext } from '../../subgraph-server/subgraph.ts';
import type { Resolvers } from './generated/resolvers-types.ts';
import { District, School } from './entities.ts';
import { listSize, requiredText } from '../../subgraph-server/input.ts';
import { graphqlEnumValue } from '../../subgraph-server/graphql-enum.ts';
import { plainPage } from '../../subgraph-server/plain-reads.ts';

const MAX_SCHOOLS = 100;
/** Only ever asked in a read-only operation (no mutation returns a District), so through the fast read path. */
const schoolsByName = async (em: RequestContext['em'], first: unknown) =>
  (await plainPage(em, School, { where: {}, orderBy: { name: 'asc', id: 'asc' }, first: listSize(first, MAX_SCHOOLS) }))
    .items as SchoolRow[];
/** The caller's own district row: its key is the tenant id. */
const districtOf = (loaders: RequestContext['loaders'], tenantId: string) => loaders.one<DistrictRow>(District, 'tenantId').load(tenantId);

type DistrictRow = InferEntity<typeof District>;
type SchoolRow = InferEntity<typeof School>;

export const resolvers: Resolvers = {
  Query: {
    async district(_root, _args, { loaders, tenant }) {
      const district = await districtOf(loaders, tenant.tenantId);
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
    __resolveReference: (ref: { id: string }, { tenant, loaders }: RequestContext) =>
      ref.id === tenant.tenantId ? districtOf(loaders, ref.id) : null,
  },
  School: {
    __resolveReference: (ref: { id: string }, { loaders }: RequestContext) => loaders.one<SchoolRow>(School).load(ref.id),
  },
};
