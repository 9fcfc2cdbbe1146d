/**
 * Operation limits on a real platform: each limit refuses before any subgraph fetch or SQL statement, through the
 * gateway and straight at a subgraph; every list is capped; the legitimate operations (load scenarios, README,
 * `npm start`'s curl) run within the limits; fragments, batches and big variables cannot get around them.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { composeServices } from '@apollo/composition';
import { buildSubgraphSchema } from '@apollo/subgraph';
import {
  GraphQLList,
  GraphQLNonNull,
  Kind,
  getOperationAST,
  isObjectType,
  parse,
  type DocumentNode,
  type GraphQLSchema,
  type SelectionSetNode,
} from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readRegistry, projectPath } from '../../config/registry.ts';
import { estimateCost } from '../../http/operation-limits.ts';
import { loadSubgraphs } from '../../subgraph-server/registry.ts';
import { parseScenario, resolveVariables, type DistrictTarget } from '../../load/scenarios/scenario.ts';
import { WELCOME_QUERY } from '../../dev/platform.ts';
import { SCENARIOS_DIR } from '../../load/runner/run.ts';
import { demo, startTestPlatform, type GraphQLResult, type TestPlatform } from '../support/platform.ts';
import {
  LIMITS,
  deepFragments,
  directCaller,
  expectLimitRefusal,
  expectServed,
  fanOut,
  fragmentBomb,
  subgraphRequestCounter,
} from './support.ts';

/** Small enough for the demo data to cross it within the other limits, large enough for every legitimate response. */
const RESPONSE_CAP = 16 * 1024;
const SUBGRAPH_TOKENS = LIMITS.maxTokens * 2;
const SUBGRAPH_COST = LIMITS.maxCost * 2;
const north = demo('north-valley').tenantId;

let platform: TestPlatform;
let direct: Awaited<ReturnType<typeof directCaller>>;
const statements: string[] = [];
let schoolIds: string[] = [];

beforeAll(async () => {
  // District status remembered for the whole file, so a refused request can be shown to cause no SQL at all.
  platform = await startTestPlatform(
    { districtStatusTtlMs: 3_600_000, operationLimits: { ...LIMITS, maxResponseBytes: RESPONSE_CAP } },
    (service, sql) => statements.push(`${service}: ${sql}`),
  );
  direct = await directCaller(platform);
  const { body } = await platform.as('north-valley', '{ schools { id } }');
  schoolIds = body.data.schools.map((s: { id: string }) => s.id);
  expect(schoolIds.length).toBeGreaterThan(1);
});
afterAll(() => platform?.stop());

/** Runs `send` and returns its result with the subgraph requests and SQL statements it caused. */
async function measured(send: () => Promise<GraphQLResult>) {
  const counter = subgraphRequestCounter(platform);
  statements.length = 0;
  try {
    const result = await send();
    return { result, subgraphRequests: counter.count(), sql: [...statements] };
  } finally {
    counter.stop();
  }
}

const asNorth = (query: string, variables?: unknown) => platform.as('north-valley', query, variables);
const schoolRepresentations = () => [{ __typename: 'School', id: schoolIds[0] }];

describe('every list is capped', () => {
  it('every list field of every subgraph takes a `first` with a default (or is _entities / a connection page)', async () => {
    const checked: string[] = [];
    for (const definition of await loadSubgraphs()) {
      const schema = buildSubgraphSchema([{ typeDefs: definition.typeDefs, resolvers: {} as never }]);
      for (const type of Object.values(schema.getTypeMap())) {
        if (!isObjectType(type) || type.name.startsWith('_')) continue;
        for (const field of Object.values(type.getFields())) {
          const unwrapped = field.type instanceof GraphQLNonNull ? field.type.ofType : field.type;
          if (!(unwrapped instanceof GraphQLList)) continue;
          const name = `${definition.name}: ${type.name}.${field.name}`;
          if (field.name === '_entities')
            expect(
              field.args.map((a) => a.name),
              name,
            ).toEqual(['representations']);
          else if (type.name.endsWith('Connection') && field.name === 'edges') continue;
          else expect(field.args.find((a) => a.name === 'first')?.defaultValue, name).toEqual(expect.any(Number));
          checked.push(name);
        }
      }
    }
    expect(checked).toEqual(
      expect.arrayContaining([
        'students: School.students',
        'students: Student.enrollments',
        'staff: Section.students',
        'staff: StaffMember.sections',
        'districts: District.schools',
      ]),
    );
  });

  it.each([
    ['{ schools { students(first: 101) { id } } }', 'first must be from 1 to 100'],
    ['{ sections { students(first: 0) { id } } }', 'first must be from 1 to 200'],
    ['{ sections(first: 0) { id } }', 'first must be from 1 to 100'],
    ['{ staff { sections(first: 101) { id } } }', 'first must be from 1 to 100'],
    ['{ district { schools(first: 101) { id } } }', 'first must be from 1 to 100'],
  ])('%s is refused: %s', async (query, message) => {
    const { body } = await asNorth(query);
    expect(body.errors?.map((e) => [e.message, e.extensions?.code])).toContainEqual([message, 'BAD_USER_INPUT']);
  });

  it('a nested list reads only `first` rows per parent, all parents in one statement', async () => {
    const { result, sql } = await measured(() => asNorth('{ schools { id students(first: 2) { id } } }'));
    expectServed(result);
    const schools = result.body.data.schools as { students: unknown[] }[];
    expect(schools.length).toBe(schoolIds.length);
    // Every demo school has 8 students; each shows exactly 2.
    expect(schools.map((s) => s.students.length)).toEqual(schools.map(() => 2));
    const studentReads = sql.filter((s) => s.startsWith('students:') && /from "student"/.test(s));
    expect(studentReads).toHaveLength(1);
    expect(studentReads[0]).toMatch(/row_number\(\) over \(partition by "s0"."school_id"/);
  });
});

describe('legitimate operations run within the limits', () => {
  /** Depth as graphql-armor counts it (fragments expanded). */
  const depthOf = (set: SelectionSetNode, document: DocumentNode): number =>
    Math.max(
      0,
      ...set.selections.map((s) => {
        if (s.kind === Kind.FIELD) return s.selectionSet ? 1 + depthOf(s.selectionSet, document) : 1;
        if (s.kind === Kind.INLINE_FRAGMENT) return depthOf(s.selectionSet, document);
        const fragment = document.definitions.find((d) => d.kind === Kind.FRAGMENT_DEFINITION && d.name.value === s.name.value);
        return fragment && fragment.kind === Kind.FRAGMENT_DEFINITION ? depthOf(fragment.selectionSet, document) : 0;
      }),
    );

  function apiSchema(): GraphQLSchema {
    const composed = composeServices(
      readRegistry().map((e) => ({ name: e.name, typeDefs: parse(readFileSync(projectPath(e.schema), 'utf8')), url: e.routingUrl })),
    );
    if (!composed.schema) throw new Error('composition failed');
    return composed.schema.toAPISchema().toGraphQLJSSchema();
  }

  function legitimateOperations(): { name: string; query: string; variables: Record<string, unknown> }[] {
    const readme = readFileSync(projectPath('README.md'), 'utf8');
    const readmeQuery = JSON.parse(/-d '(\{"query":.*\})'/.exec(readme)![1]!).query as string;
    const operations = [
      { name: 'README curl', query: readmeQuery, variables: {} },
      { name: 'npm start curl', query: WELCOME_QUERY, variables: {} },
    ];
    const seen = new Set<string>();
    for (const file of readdirSync(SCENARIOS_DIR).filter((f) => f.endsWith('.json'))) {
      const scenario = parseScenario(JSON.parse(readFileSync(join(SCENARIOS_DIR, file), 'utf8')), file);
      for (const op of scenario.operations) {
        if (seen.has(op.query)) continue;
        seen.add(op.query);
        operations.push({ name: `${file}: ${op.name}`, query: op.query, variables: op.variables ?? {} });
      }
    }
    return operations;
  }

  it('every operation of load/scenarios, the README and `npm start` is served through the gateway, and its depth and cost are within the limits', async () => {
    const { body } = await asNorth('{ students(first: 10) { edges { node { id } } } sections { id teacher { id } } }');
    const district: DistrictTarget = {
      tenantId: north,
      slug: 'north-valley',
      students: 24,
      token: '',
      samples: {
        studentId: body.data.students.edges.map((e: { node: { id: string } }) => e.node.id),
        sectionId: body.data.sections.map((s: { id: string }) => s.id),
        teacherId: body.data.sections.map((s: { teacher: { id: string } }) => s.teacher.id),
        schoolId: schoolIds,
      },
    };
    const schema = apiSchema();
    const operations = legitimateOperations();
    expect(operations.length).toBeGreaterThanOrEqual(8);
    const measuredOps = [];
    for (const op of operations) {
      const variables = resolveVariables(op.variables, district, Math.random) as Record<string, unknown>;
      const result = await asNorth(op.query, variables);
      expectServed(result, RESPONSE_CAP);
      const document = parse(op.query);
      const operation = getOperationAST(document)!;
      measuredOps.push({
        name: op.name,
        depth: depthOf(operation.selectionSet, document),
        cost: estimateCost(schema, document, operation, variables),
      });
    }
    const deepest = measuredOps.reduce((a, b) => (b.depth > a.depth || (b.depth === a.depth && b.cost > a.cost) ? b : a));
    const widest = measuredOps.reduce((a, b) => (b.cost > a.cost ? b : a));
    console.log(
      `legitimate operations: deepest ${deepest.name} (depth ${deepest.depth}, cost ${deepest.cost}); widest ${widest.name} (depth ${widest.depth}, cost ${widest.cost}); limits depth ${LIMITS.maxDepth}, cost ${LIMITS.maxCost}`,
    );
    for (const op of measuredOps) {
      expect(op.depth, op.name).toBeLessThanOrEqual(LIMITS.maxDepth);
      expect(op.cost, op.name).toBeLessThanOrEqual(LIMITS.maxCost);
    }
  });
});

/** A valid query of just under the token limit: 221 fragments on District, 9 tokens each with its spread, plus 5. */
function withinTokens(): string {
  const names = Array.from({ length: Math.floor((LIMITS.maxTokens - 5) / 9) }, (_, i) => `F${i}`);
  return `{ district { ${names.map((n) => `...${n}`).join(' ')} } } ${names.map((n) => `fragment ${n} on District { id }`).join(' ')}`;
}

describe('each limit refuses before any subgraph fetch or SQL', () => {
  const aliased = (count: number, field: string) => `{ ${Array.from({ length: count }, (_, i) => `a${i}: ${field}`).join(' ')} }`;
  const gatewayCases: [string, string, RegExp, number][] = [
    ['depth', fanOut(LIMITS.maxDepth, 'schools'), /^Query depth limit of \d+ exceeded, found 8\.$/, LIMITS.maxDepth],
    ['aliases', aliased(LIMITS.maxAliases + 1, 'district { id }'), /^Aliases limit of \d+ exceeded, found 16\.$/, LIMITS.maxAliases],
    [
      'root fields',
      aliased(LIMITS.maxRootFields + 1, 'district { id }'),
      /^Root fields limit of \d+ exceeded, found 11\.$/,
      LIMITS.maxRootFields,
    ],
    [
      'directives',
      `{ district { ${'id @include(if: true) '.repeat(LIMITS.maxDirectives + 1)} } }`,
      /^Directives limit of \d+ exceeded, found 21\.$/,
      LIMITS.maxDirectives,
    ],
    ['tokens', `{ district { ${'id '.repeat(LIMITS.maxTokens)} } }`, /^Token limit of \d+ exceeded\.$/, LIMITS.maxTokens],
    [
      'cost',
      '{ schools { students(first: 100) { school { students(first: 100) { id } } } } }',
      /^Query cost limit of \d+ exceeded, found 2020100\.$/,
      LIMITS.maxCost,
    ],
    [
      'list size',
      `{ sections { students(first: ${LIMITS.maxListSize + 1}) { id } } }`,
      /^List size limit of \d+ exceeded, found 201 \(first of students\)\.$/,
      LIMITS.maxListSize,
    ],
  ];

  it.each(gatewayCases)('%s, through the gateway', async (_limit, query, message, allowed) => {
    const { result, subgraphRequests, sql } = await measured(() => asNorth(query));
    expectLimitRefusal(result, message, allowed);
    expect(subgraphRequests).toBe(0);
    expect(sql).toEqual([]);
  });

  it('the same operations within the limits are served (one alias, field, directive or level less)', async () => {
    for (const query of [
      fanOut(LIMITS.maxDepth - 1, 'schools', 1),
      aliased(LIMITS.maxRootFields, 'district { id }'),
      `{ district { ${'id @include(if: true) '.repeat(LIMITS.maxDirectives)} } }`,
      withinTokens(),
      '{ schools { students(first: 100) { school { id } } } }',
      `{ sections(first: 1) { students(first: ${LIMITS.maxListSize}) { id } } }`,
    ]) {
      expectServed(await asNorth(query), RESPONSE_CAP);
    }
  });

  const studentId = '00000000-0000-4000-8000-000000000000';
  const subgraphCases: [string, string, () => unknown, RegExp, number][] = [
    [
      'depth',
      'students',
      () => ({ query: fanOut(LIMITS.maxDepth, '_entities'), variables: { r: schoolRepresentations() } }),
      /^Query depth limit of \d+ exceeded, found 8\.$/,
      LIMITS.maxDepth,
    ],
    [
      'aliases',
      'students',
      () => ({ query: aliased(LIMITS.maxAliases + 1, `student(id: "${studentId}") { id }`) }),
      /^Aliases limit/,
      LIMITS.maxAliases,
    ],
    [
      'root fields',
      'staff',
      () => ({ query: aliased(LIMITS.maxRootFields + 1, 'sections { id }') }),
      /^Root fields limit/,
      LIMITS.maxRootFields,
    ],
    [
      'directives',
      'districts',
      () => ({ query: `{ district { ${'id @skip(if: false) '.repeat(LIMITS.maxDirectives + 1)} } }` }),
      /^Directives limit/,
      LIMITS.maxDirectives,
    ],
    ['tokens', 'districts', () => ({ query: `{ district { ${'id '.repeat(SUBGRAPH_TOKENS)} } }` }), /^Token limit/, SUBGRAPH_TOKENS],
    [
      'cost',
      'students',
      () => ({
        query:
          'query ($r: [_Any!]!) { _entities(representations: $r) { ... on School { students(first: 100) { school { students(first: 100) { school { students(first: 100) { id } } } } } } } }',
        variables: { r: schoolRepresentations() },
      }),
      /^Query cost limit of \d+ exceeded, found 2020201\.$/,
      SUBGRAPH_COST,
    ],
    [
      'list size',
      'staff',
      () => ({ query: 'query ($n: Int) { sections { students(first: $n) { id } } }', variables: { n: 10_000 } }),
      /^List size limit of \d+ exceeded, found 10000 \(first of students\)\.$/,
      LIMITS.maxListSize,
    ],
  ];

  it.each(subgraphCases)(
    '%s, straight at a subgraph with a valid signed context: refused before its transaction opens',
    async (_limit, service, body, message, allowed) => {
      const { result, sql } = await measured(() => direct(service, north, body()));
      expectLimitRefusal(result, message, allowed);
      expect(sql).toEqual([]);
    },
  );

  it('a response over the size cap is refused with a clear error, however the subgraphs answered', async () => {
    const page = 'students(first: 100) { edges { cursor node { id firstName lastName grade dateOfBirth } } }';
    const { result } = await measured(() => asNorth(aliased(8, page)));
    expectLimitRefusal(result, /^Response size limit of \d+ bytes exceeded/, RESPONSE_CAP);
    // The subgraph refuses to send it too, before the gateway sees a byte of it.
    const straight = await direct('students', north, { query: aliased(8, page) });
    expectLimitRefusal(straight, /^Response size limit of \d+ bytes exceeded/, RESPONSE_CAP);
    // Within the cap the same page is served.
    expectServed(await asNorth(aliased(1, page)), RESPONSE_CAP);
  });
});

describe("the second check, in the gateway's Apollo plugin", () => {
  it('a persisted query sent by its hash alone (no text to check before Apollo) is checked with its own variables', async () => {
    const query = 'query ($n: Int) { schools { students(first: $n) { school { students(first: $n) { id } } } } }';
    const extensions = { persistedQuery: { version: 1, sha256Hash: createHash('sha256').update(query).digest('hex') } };
    const send = async (body: unknown): Promise<GraphQLResult> => {
      const response = await fetch(platform.gateway.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${await platform.token('north-valley')}` },
        body: JSON.stringify(body),
      });
      const text = await response.text();
      return { status: response.status, body: JSON.parse(text), text };
    };
    const registered = await send({ query, variables: { n: 1 }, extensions });
    const { result: byHash, subgraphRequests, sql } = await measured(() => send({ variables: { n: 100 }, extensions }));
    if (registered.body.errors?.[0]?.extensions?.code === 'PERSISTED_QUERY_NOT_SUPPORTED') {
      // Persisted queries turned off: a hash alone reaches nothing.
      expect(byHash.body.errors?.[0]?.extensions?.code).toBe('PERSISTED_QUERY_NOT_SUPPORTED');
    } else {
      expectServed(registered, RESPONSE_CAP);
      expectLimitRefusal(byHash, /^Query cost limit of \d+ exceeded, found 2020100\.$/, LIMITS.maxCost);
    }
    expect(subgraphRequests).toBe(0);
    expect(sql).toEqual([]);
  });
});

describe('the School → students → school fan-out at every depth from 1 to 20', () => {
  it.each(Array.from({ length: 20 }, (_, i) => i + 1))(
    '%i levels: served within the limits, or refused before any work (through the gateway and straight at the students subgraph)',
    async (levels) => {
      const attempts: [string, () => Promise<GraphQLResult>][] = [
        ['gateway', () => asNorth(fanOut(levels, 'schools'))],
        ['subgraph', () => direct('students', north, { query: fanOut(levels, '_entities'), variables: { r: schoolRepresentations() } })],
      ];
      for (const [where, attempt] of attempts) {
        const { result, subgraphRequests, sql } = await measured(attempt);
        if (result.status === 200) {
          expectServed(result, RESPONSE_CAP);
          expect(levels + 1, 'depth past the limit must never be served').toBeLessThanOrEqual(LIMITS.maxDepth);
        } else {
          expectLimitRefusal(result, /^(Query depth|Query cost) limit of \d+ exceeded/);
          expect(sql).toEqual([]);
          if (where === 'gateway') expect(subgraphRequests).toBe(0);
        }
        if (levels + 1 > LIMITS.maxDepth) expect(result.status).toBe(400);
        if (levels <= 2) expect(result.status, `${levels} levels is an ordinary listing`).toBe(200);
      }
    },
  );

  it('past the depth limit nothing reaches a subgraph from the gateway', async () => {
    const { result, subgraphRequests, sql } = await measured(() => asNorth(fanOut(20, 'schools')));
    expectLimitRefusal(result, /^Query depth limit of \d+ exceeded, found 21\.$/, LIMITS.maxDepth);
    expect(subgraphRequests).toBe(0);
    expect(sql).toEqual([]);
  });
});

describe('fragments', () => {
  it('depth hidden in fragments is counted with the fragments expanded', async () => {
    const { result, subgraphRequests } = await measured(() => asNorth(deepFragments(LIMITS.maxDepth)));
    expectLimitRefusal(result, /^Query depth limit of \d+ exceeded, found 8\.$/, LIMITS.maxDepth);
    expect(subgraphRequests).toBe(0);
    expectServed(await asNorth(deepFragments(3)), RESPONSE_CAP);
  });

  it('a fragment bomb (40 fragments, each spreading the next twice: 2^39 fields) is refused without expanding it', async () => {
    const query = fragmentBomb(40);
    const { result, subgraphRequests } = await measured(() => asNorth(query));
    expectLimitRefusal(result, /^Root fields limit of \d+ exceeded, found 549755813888\.$/, LIMITS.maxRootFields);
    expect(subgraphRequests).toBe(0);
    const straight = await measured(() => direct('districts', north, { query }));
    expectLimitRefusal(straight.result, /^Root fields limit/, LIMITS.maxRootFields);
    expect(straight.sql).toEqual([]);
  });

  it('fragment cycles are refused by validation; nothing loops, at the gateway or at a subgraph', async () => {
    const query = '{ schools { ...A } } fragment A on School { students { ...B } } fragment B on Student { school { ...A } }';
    const { result, subgraphRequests } = await measured(() => asNorth(query));
    expect(result.status).toBe(400);
    expect(result.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(result.body.errors?.[0]?.message).toMatch(/^Cannot spread fragment "A" within itself/);
    expect(subgraphRequests).toBe(0);
    const straight = await direct('students', north, {
      query:
        'query ($r: [_Any!]!) { _entities(representations: $r) { ...A } } fragment A on School { students { ...B } } fragment B on Student { school { ...A } }',
      variables: { r: schoolRepresentations() },
    });
    expect(straight.status).toBe(400);
    expect(straight.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });
});

describe('request shapes', () => {
  it('a batch (JSON array of operations) is refused, at the gateway and at a subgraph', async () => {
    const batch = JSON.stringify(Array.from({ length: 50 }, () => ({ query: '{ district { id } }' })));
    const { result, subgraphRequests } = await measured(async () => {
      const response = await fetch(platform.gateway.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${await platform.token('north-valley')}` },
        body: batch,
      });
      const text = await response.text();
      return { status: response.status, body: JSON.parse(text), text };
    });
    expect(result.status).toBe(400);
    expect(result.body.errors).toEqual([{ message: 'Operation batching disabled.', extensions: { code: 'BAD_REQUEST' } }]);
    expect(subgraphRequests).toBe(0);
    const straight = await measured(() => direct('districts', north, batch));
    expect(straight.result.status).toBe(400);
    expect(straight.result.body.errors?.[0]?.extensions?.code).toBe('BAD_REQUEST');
    expect(straight.sql).toEqual([]);
  });

  it('1 MB of variables is harmless: unused it changes nothing, used it is refused as input; past 1 MiB the body is refused', async () => {
    const big = 'x'.repeat(1_000_000);
    const unused = await asNorth('{ district { id } }', { big });
    expectServed(unused, RESPONSE_CAP);
    expect(unused.body.data).toEqual({ district: { id: north } });
    const used = await asNorth('query ($after: String) { students(first: 5, after: $after) { edges { node { id } } } }', { after: big });
    expect(used.status).toBeLessThan(500);
    expect(used.text.length).toBeLessThan(1000);
    expect(used.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const tooBig = await asNorth('{ district { id } }', { big: 'x'.repeat(1024 * 1024) });
    expect(tooBig.status).toBe(413);
    expect(tooBig.body.errors?.[0]?.extensions?.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('1 MB of _entities representations straight at a subgraph is served within the limits or refused', async () => {
    const representations = Array.from({ length: 14_000 }, (_, i) => ({
      __typename: 'Student',
      id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    }));
    expect(JSON.stringify(representations).length).toBeGreaterThan(900_000);
    const withFields = await measured(() =>
      direct('students', north, {
        query:
          'query ($r: [_Any!]!) { _entities(representations: $r) { ... on Student { id firstName lastName grade dateOfBirth school { id } } } }',
        variables: { r: representations },
      }),
    );
    expectLimitRefusal(withFields.result, /^Query cost limit of \d+ exceeded, found 112000\.$/, SUBGRAPH_COST);
    expect(withFields.sql).toEqual([]);
    // Within the cost it runs (one statement for all 14,000 keys), and its 14,000 nulls meet this file's response cap.
    const idsOnly = await measured(() =>
      direct('students', north, {
        query: 'query ($r: [_Any!]!) { _entities(representations: $r) { ... on Student { id } } }',
        variables: { r: representations },
      }),
    );
    expectLimitRefusal(idsOnly.result, /^Response size limit of \d+ bytes exceeded/, RESPONSE_CAP);
    expect(idsOnly.sql.filter((s) => /from "student"/.test(s))).toHaveLength(1);
  });
});
