/** Straight to a subgraph, past the gateway: only a context the gateway signed opens a tenant. */
import { randomUUID } from 'node:crypto';
import { SignJWT, importJWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  TENANT_CONTEXT_HEADER,
  TENANT_ID_HEADER,
  createTenantContextSigner,
  generateContextKeyPair,
  type TenantContext,
} from '../tenancy/tenant-context.ts';
import { demo, startTestPlatform, type TestPlatform } from './support/platform.ts';

const statements: { service: string; sql: string }[] = [];
let platform: TestPlatform;
let sign: (context: TenantContext, audience: string) => Promise<string>;

beforeAll(async () => {
  platform = await startTestPlatform({}, (service, sql) => statements.push({ service, sql }));
  sign = await createTenantContextSigner(platform.keys.context.privateJwk);
});
afterAll(() => platform?.stop());

const north = demo('north-valley').tenantId;
const south = demo('south-ridge').tenantId;
const contextFor = (tenantId: string): TenantContext => ({ tenantId, subject: 'test', requestId: randomUUID() });

async function direct(service: string, query: string, headers: Record<string, string>, variables?: unknown) {
  return platform.graphql({ query, variables }, { url: platform.subgraphs[service]!.url, headers });
}

/** A district's student ids, read as the owner: never taken through the gateway or subgraph under test. */
async function idsOf(tenant: 'north-valley' | 'south-ridge') {
  const owner = await platform.connect(platform.databases.students!.ownerUrl);
  const { rows } = await owner.query<{ id: string }>('select id from student where tenant_id = $1 order by last_name, first_name, id', [
    demo(tenant).tenantId,
  ]);
  await owner.end();
  expect(rows.length).toBeGreaterThanOrEqual(10);
  return { students: rows.map((r) => r.id) };
}

describe('tenant context', () => {
  const query = '{ students(first: 1) { edges { node { id } } } }';

  it('a context signed by the gateway for this subgraph is accepted', async () => {
    const { status, body } = await direct('students', query, { [TENANT_CONTEXT_HEADER]: await sign(contextFor(north), 'students') });
    expect(status).toBe(200);
    expect(body.data.students.edges).toHaveLength(1);
  });

  it.each([
    ['no context at all', async () => ({}), 'missing tenant context'],
    ['x-tenant-id alone', async () => ({ [TENANT_ID_HEADER]: north }), 'missing tenant context'],
    [
      'a context for another subgraph',
      async () => ({ [TENANT_CONTEXT_HEADER]: await sign(contextFor(north), 'staff') }),
      'invalid tenant context',
    ],
    [
      'a context signed by another key',
      async () => {
        const other = await createTenantContextSigner((await generateContextKeyPair()).privateJwk);
        return { [TENANT_CONTEXT_HEADER]: await other(contextFor(north), 'students') };
      },
      'invalid tenant context',
    ],
    [
      'a forged context with the gateway key id but another key',
      async () => {
        const other = await generateContextKeyPair();
        const forger = await createTenantContextSigner({ ...other.privateJwk, kid: platform.keys.context.privateJwk.kid });
        return { [TENANT_CONTEXT_HEADER]: await forger(contextFor(north), 'students') };
      },
      'invalid tenant context',
    ],
    [
      'an expired context',
      async () => {
        const key = await importJWK(platform.keys.context.privateJwk, 'EdDSA');
        const now = Math.floor(Date.now() / 1000);
        const token = await new SignJWT({ tid: north, rid: randomUUID() })
          .setProtectedHeader({ alg: 'EdDSA', kid: platform.keys.context.privateJwk.kid })
          .setIssuer('k12-gateway')
          .setAudience('students')
          .setSubject('test')
          .setIssuedAt(now - 120)
          .setExpirationTime(now - 90)
          .sign(key);
        return { [TENANT_CONTEXT_HEADER]: token };
      },
      'expired tenant context',
    ],
    ['garbage', async () => ({ [TENANT_CONTEXT_HEADER]: 'not.a.jws' }), 'invalid tenant context'],
    [
      'a valid context whose x-tenant-id names another district',
      async () => ({ [TENANT_CONTEXT_HEADER]: await sign(contextFor(north), 'students'), [TENANT_ID_HEADER]: south }),
      'tenant header does not match tenant context',
    ],
  ])('%s → 401', async (_case, headers, reason) => {
    const { status, body, text } = await direct('students', query, await headers());
    expect(status).toBe(401);
    expect(body).toEqual({ errors: [{ message: reason, extensions: { code: 'UNAUTHENTICATED' } }] });
    expect(text).not.toMatch(/\bat .*\.(ts|js):\d+/);
  });
});

describe('_entities', () => {
  const entitiesQuery = `query ($representations: [_Any!]!) { _entities(representations: $representations) { ... on Student { id firstName } } }`;

  it("resolves another district's keys to null under a valid context", async () => {
    const theirs = await idsOf('south-ridge');
    const mine = await idsOf('north-valley');
    const representations = [...theirs.students.slice(0, 3), mine.students[0], 'not-a-uuid'].map((id) => ({ __typename: 'Student', id }));
    const { body } = await direct(
      'students',
      entitiesQuery,
      { [TENANT_CONTEXT_HEADER]: await sign(contextFor(north), 'students') },
      { representations },
    );
    expect(body.errors).toBeUndefined();
    expect(body.data._entities.slice(0, 3)).toEqual([null, null, null]);
    expect(body.data._entities[3]).toMatchObject({ id: mine.students[0] });
    expect(body.data._entities[4]).toBeNull();
  });

  it('fetches all representations of one type with one SQL statement', async () => {
    const mine = await idsOf('north-valley');
    const representations = mine.students.slice(0, 10).map((id) => ({ __typename: 'Student', id }));
    statements.length = 0;
    const { body } = await direct(
      'students',
      entitiesQuery,
      { [TENANT_CONTEXT_HEADER]: await sign(contextFor(north), 'students') },
      { representations },
    );
    expect(body.data._entities).toHaveLength(10);
    const studentSelects = statements.filter((s) => s.service === 'students' && /select .* from "student"/i.test(s.sql));
    expect(studentSelects).toHaveLength(1);
  });

  it('one gateway query over sections → students costs one student lookup', async () => {
    statements.length = 0;
    const { body } = await platform.as('north-valley', `{ sections { students { firstName } } }`);
    expect(body.data.sections.length).toBeGreaterThan(1);
    const studentSelects = statements.filter((s) => s.service === 'students' && /from "student"/i.test(s.sql));
    expect(studentSelects).toHaveLength(1);
  });

  it('applies the tenant once per request: one transaction, one set_config', async () => {
    statements.length = 0;
    await direct('students', '{ students(first: 3) { edges { node { id enrollments { id } } } } }', {
      [TENANT_CONTEXT_HEADER]: await sign(contextFor(north), 'students'),
    });
    const sqls = statements.filter((s) => s.service === 'students').map((s) => s.sql);
    expect(sqls.filter((sql) => /set_config/.test(sql))).toHaveLength(1);
    expect(sqls.filter((sql) => /\bbegin\b/i.test(sql))).toHaveLength(1);
    expect(sqls.filter((sql) => /\bcommit\b/i.test(sql))).toHaveLength(1);
    expect(sqls.filter((sql) => /from "/.test(sql)).length).toBeGreaterThanOrEqual(2);
  });
});

describe('one request, one transaction', () => {
  it('a request whose later field fails rolls back what an earlier field already flushed', async () => {
    const owner = await platform.connect(platform.databases.students!.ownerUrl);
    const [first, second] = (await idsOf('north-valley')).students;
    const nameOf = async (id: string) =>
      (await owner.query('select first_name from student where id = $1', [id])).rows[0].first_name as string;
    const before = await nameOf(first!);
    statements.length = 0;
    const { body } = await direct(
      'students',
      `mutation ($a: ID!, $b: ID!) { a: updateStudent(id: $a, input: { firstName: "Renamed" }) { id } b: updateStudent(id: $b, input: { grade: 99 }) { id } }`,
      { [TENANT_CONTEXT_HEADER]: await sign(contextFor(north), 'students') },
      { a: first, b: second },
    );
    expect(body.data.a).toEqual({ id: first });
    expect(body.errors).toEqual([expect.objectContaining({ path: ['b'], extensions: { code: 'BAD_USER_INPUT' } })]);
    // `a` was flushed inside the request's transaction, which the error then rolled back.
    const sqls = statements.filter((s) => s.service === 'students').map((s) => s.sql);
    expect(sqls.some((sql) => /^\[query\] update "student"/.test(sql))).toBe(true);
    expect(sqls.at(-1)).toMatch(/^\[query\] rollback/);
    expect(await nameOf(first!)).toBe(before);
  });
});
