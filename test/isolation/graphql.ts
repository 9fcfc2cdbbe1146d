/** Operations that name another district's ids: aliases, batches, _entities, deep and wide shapes, error paths. */
import { describe, expect } from 'vitest';
import { TENANT_CONTEXT_HEADER } from '../../tenancy/tenant-context.ts';
import { subgraphShapes } from '../support/graph.ts';
import { idsOf } from '../support/tenant-tables.ts';
import { attack, expectNoForeignData, expectRefusal, expectServedWithoutForeignData, NORTH, SOUTH, EAST, type Battery } from './harness.ts';

export function graphqlAttacks(battery: Battery): void {
  const asNorth = (query: string, variables?: unknown) => battery.platform.as('north-valley', query, variables);
  const south = (table: string) => battery.keys(SOUTH, table);
  const east = (table: string) => battery.keys(EAST, table);
  const direct = async (service: string, query: string, variables: unknown) =>
    battery.platform.graphql(
      { query, variables },
      { url: battery.platform.subgraphs[service]!.url, headers: { [TENANT_CONTEXT_HEADER]: await battery.sign(NORTH, service) } },
    );

  describe('GraphQL', () => {
    attack("aliases fetching another district's student, school and district ids resolve to null", async () => {
      const result = await asNorth(
        `query ($s1: ID!, $s2: ID!, $school: ID!) { a: student(id: $s1) { id firstName } b: student(id: $s2) { id } c: school(id: $school) { id name } own: district { id } }`,
        { s1: south('student')[0], s2: east('student')[0], school: south('school')[0] },
      );
      expectServedWithoutForeignData(result);
      expect(result.body.data).toEqual({ a: null, b: null, c: null, own: { id: NORTH } });
    });

    attack('batched operations (a JSON array) are refused before any of them is looked up', async () => {
      battery.statements.length = 0;
      const response = await fetch(battery.platform.gateway.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${await battery.platform.token('north-valley')}` },
        body: JSON.stringify([{ query: '{ district { id } }' }, { query: `{ student(id: "${south('student')[0]}") { id firstName } }` }]),
      });
      const text = await response.text();
      expectRefusal({ status: response.status, text, body: JSON.parse(text) }, 400, 'Operation batching disabled.', 'BAD_REQUEST');
      // Only the district-status gate ran (TTL 0: one `district` read); nothing reached the data of either operation.
      expect(
        battery.statements.filter((s) => !(s.service === 'districts' && /from "district"|set_config|\bbegin\b|\bcommit\b/i.test(s.sql))),
      ).toEqual([]);
      expect(battery.statements.filter((s) => /from "district"/i.test(s.sql))).toHaveLength(1);
    });

    attack('_entities is not reachable through the gateway', async () => {
      const result = await asNorth(
        `{ _entities(representations: [{ __typename: "Student", id: "${south('student')[0]}" }]) { ... on Student { id } } }`,
      );
      expectNoForeignData(result.text.replace(south('student')[0]!, ''));
      expect(result.status).toBe(400);
      expect(result.body.errors).toEqual([
        {
          message: 'Cannot query field "_entities" on type "Query".',
          locations: [{ line: 1, column: 3 }],
          extensions: { code: 'GRAPHQL_VALIDATION_FAILED' },
        },
      ]);
    });

    attack("_entities with another district's Student keys, straight to the subgraph, resolve to null", async () => {
      const representations = [...south('student').slice(0, 5), ...east('student').slice(0, 5)].map((id) => ({
        __typename: 'Student',
        id,
      }));
      const result = await direct(
        'students',
        `query ($r: [_Any!]!) { _entities(representations: $r) { ... on Student { id firstName enrollments { id } } } }`,
        { r: representations },
      );
      expectServedWithoutForeignData(result);
      expect(result.body.data._entities).toEqual(representations.map(() => null));
    });

    attack("_entities with another district's StaffMember and Section keys resolve to null", async () => {
      const representations = [
        ...south('staff_member')
          .slice(0, 3)
          .map((id) => ({ __typename: 'StaffMember', id })),
        ...south('section')
          .slice(0, 3)
          .map((id) => ({ __typename: 'Section', id })),
      ];
      const result = await direct(
        'staff',
        `query ($r: [_Any!]!) { _entities(representations: $r) { ... on StaffMember { id email } ... on Section { id name } } }`,
        { r: representations },
      );
      expectServedWithoutForeignData(result);
      expect(result.body.data._entities).toEqual(representations.map(() => null));
    });

    attack("_entities with another district's District and School keys resolve to null", async () => {
      const representations = [{ __typename: 'District', id: SOUTH }, ...south('school').map((id) => ({ __typename: 'School', id }))];
      const result = await direct(
        'districts',
        `query ($r: [_Any!]!) { _entities(representations: $r) { ... on District { id name } ... on School { id name } } }`,
        { r: representations },
      );
      expectServedWithoutForeignData(result);
      expect(result.body.data._entities).toEqual(representations.map(() => null));
    });

    attack(
      'a deep query (sections → teacher → sections … 12 levels, across subgraphs) is refused before any lookup; 6 levels stay in the district',
      async () => {
        const nest = (loops: number) => {
          let selection = 'id students { id firstName school { id } }';
          for (let level = 0; level < loops; level++) selection = `id teacher { id sections(first: 3) { ${selection} } }`;
          return `{ sections(first: 3) { ${selection} } }`;
        };
        expectRefusal(await asNorth(nest(4)), 400, 'Query depth limit of 7 exceeded, found 12.', 'OPERATION_LIMIT_EXCEEDED');
        const result = await asNorth(nest(1));
        expectServedWithoutForeignData(result);
        const seen = new Set(result.text.match(/[0-9a-f]{8}-[0-9a-f-]{27}/g));
        const own = new Set(idsOf(Object.values(battery.rows[NORTH]!).flat()));
        expect(own.size).toBeGreaterThan(0);
        expect([...seen].filter((id) => !own.has(id))).toEqual([]);
      },
    );

    attack(
      "a wide query (200 aliases over every other district's students) is refused before any lookup; 10 aliases return 10 nulls",
      async () => {
        const foreign = [...south('student'), ...east('student')];
        const wide = (count: number) =>
          `{ ${Array.from({ length: count }, (_, i) => `s${i}: student(id: "${foreign[i % foreign.length]}") { id firstName }`).join(' ')} }`;
        const refused = await asNorth(wide(200));
        expectNoForeignData(refused.text.replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, ''));
        expect(refused.status).toBe(400);
        expect(refused.body.errors).toEqual([
          { message: 'Token limit of 1000 exceeded.', extensions: { code: 'OPERATION_LIMIT_EXCEEDED' } },
        ]);
        const result = await asNorth(wide(10));
        expectNoForeignData(JSON.stringify(result.body.data));
        expect(result.status).toBe(200);
        expect(result.body.errors).toBeUndefined();
        expect(Object.keys(result.body.data)).toHaveLength(10);
        expect(Object.values(result.body.data).every((value) => value === null)).toBe(true);
      },
    );

    attack("updating another district's student returns null and changes nothing", async () => {
      const result = await asNorth(`mutation ($id: ID!) { updateStudent(id: $id, input: { firstName: "Hijacked" }) { id firstName } }`, {
        id: south('student')[1],
      });
      expectServedWithoutForeignData(result);
      expect(result.body.data).toEqual({ updateStudent: null });
      const owner = await battery.platform.connect(battery.platform.databases.students!.ownerUrl);
      const { rows } = await owner.query('select count(*)::int as hijacked from student where first_name = $1', ['Hijacked']);
      expect(rows).toEqual([{ hijacked: 0 }]);
    });

    attack("an error about another district's teacher echoes nothing of it", async () => {
      const result = await asNorth(
        `mutation ($t: ID!) { createSection(input: { name: "Probe", subject: "Art", teacherId: $t, studentIds: [] }) { id } }`,
        { t: south('staff_member')[0] },
      );
      expectNoForeignData(result.text.replace(south('staff_member')[0]!, ''));
      expect(result.body).toEqual({
        data: null,
        errors: [
          {
            message: 'teacherId does not name a staff member of this district',
            path: ['createSection'],
            extensions: { code: 'BAD_USER_INPUT', serviceName: 'staff' },
          },
        ],
      });
    });

    attack('a database error (forged cursor holding a non-UUID) is masked, echoing neither SQL nor data', async () => {
      const cursor = Buffer.from(JSON.stringify(['García', 'Ava', `${SOUTH}' or 1=1 --`])).toString('base64url');
      const result = await asNorth(`query ($after: String) { students(first: 5, after: $after) { edges { node { id } } } }`, {
        after: cursor,
      });
      expectNoForeignData(result.text);
      expect(result.body).toEqual({
        data: null,
        errors: [{ message: 'Internal server error', path: ['students'], extensions: { code: 'INTERNAL_SERVER_ERROR' } }],
      });
    });

    attack("a forged cursor naming another district's student pages only through the caller's own rows", async () => {
      const cursor = Buffer.from(JSON.stringify(['A', 'A', south('student')[0]])).toString('base64url');
      const result = await asNorth(`query ($after: String) { students(first: 100, after: $after) { edges { node { id } } } }`, {
        after: cursor,
      });
      expectServedWithoutForeignData(result);
      expect(result.body.data.students.edges.length).toBeGreaterThan(0);
      for (const edge of result.body.data.students.edges) expect(battery.keys(NORTH, 'student')).toContain(edge.node.id);
    });
  });

  describe('GraphQL, on every subgraph (types and lookups read from its SDL)', () => {
    const ownTable = (service: string, table: string) =>
      battery.tables.find((t) => t.service === service && t.name === table && t.key.length <= 1);
    const foreignIds = (table: string) => [...south(table).slice(0, 5), ...east(table).slice(0, 5)];
    const shapes = subgraphShapes();

    attack('every subgraph has at least one keyed type backed by one of its tenant tables', async () => {
      expect(shapes.filter((shape) => !shape.keyed.some(({ table }) => ownTable(shape.name, table))).map((s) => s.name)).toEqual([]);
    });

    for (const shape of shapes) {
      for (const { type, table } of shape.keyed.filter(({ table }) => ownTable(shape.name, table))) {
        attack(`${shape.name}: _entities with other districts' ${type} keys, straight to the subgraph, resolve to null`, async () => {
          const representations = foreignIds(table).map((id) => ({ __typename: type, id }));
          expect(representations.length).toBeGreaterThan(1);
          const result = await direct(shape.name, `query ($r: [_Any!]!) { _entities(representations: $r) { ... on ${type} { id } } }`, {
            r: representations,
          });
          expectServedWithoutForeignData(result);
          expect(result.body.data._entities).toEqual(representations.map(() => null));
        });
      }
      for (const { field, table } of shape.lookups.filter(({ table }) => ownTable(shape.name, table))) {
        attack(`${shape.name}: ${field}(id) with other districts' ids, through the gateway, resolves to null`, async () => {
          const ids = foreignIds(table);
          expect(ids.length).toBeGreaterThan(1);
          const result = await asNorth(
            `query (${ids.map((_, i) => `$i${i}: ID!`).join(', ')}) { ${ids.map((_, i) => `a${i}: ${field}(id: $i${i}) { id }`).join(' ')} }`,
            Object.fromEntries(ids.map((id, i) => [`i${i}`, id])),
          );
          expectServedWithoutForeignData(result);
          expect(result.body.data).toEqual(Object.fromEntries(ids.map((_, i) => [`a${i}`, null])));
        });
      }
    }
  });
}
