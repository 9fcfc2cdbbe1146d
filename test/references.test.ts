/**
 * Ids that name another service's entities (students' `schoolId`, staff's `studentIds`) are looked up in the
 * caller's district through the owning service before anything commits: a foreign, random or mixed set answers
 * BAD_USER_INPUT naming the field and the ids, and no row is written. A reference that dangles later (deleted
 * by its owner) leaves the rest of a listing intact.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TENANT_CONTEXT_HEADER, createTenantContextSigner, referenceContextHeader, type TenantContext } from '../tenancy/tenant-context.ts';
import { demo, startTestPlatform, type TestPlatform } from './support/platform.ts';

const NORTH = demo('north-valley').tenantId;
const SOUTH = demo('south-ridge').tenantId;

const statements: { service: string; sql: string }[] = [];
let platform: TestPlatform;
const owners = {} as Record<'districts' | 'students' | 'staff', pg.Client>;
let sign: (context: TenantContext, audience: string) => Promise<string>;

/** Ids read as each service's owner, past RLS: never through the gateway. */
const ids = { northSchool: '', southSchool: '', northStudents: [] as string[], southStudent: '', northTeacher: '' };

beforeAll(async () => {
  platform = await startTestPlatform({}, (service, sql) => statements.push({ service, sql }));
  for (const service of ['districts', 'students', 'staff'] as const)
    owners[service] = await platform.connect(platform.databases[service]!.ownerUrl);
  const first = async (client: pg.Client, sql: string, tenantId: string, limit = 1) =>
    (await client.query<{ id: string }>(`${sql} limit ${limit}`, [tenantId])).rows.map((r) => r.id);
  const one = async (...args: Parameters<typeof first>) => (await first(...args))[0] ?? '';
  ids.northSchool = await one(owners.districts, 'select id from school where tenant_id = $1 order by name, id', NORTH);
  ids.southSchool = await one(owners.districts, 'select id from school where tenant_id = $1 order by name, id', SOUTH);
  ids.northStudents = await first(owners.students, 'select id from student where tenant_id = $1 order by id', NORTH, 2);
  ids.southStudent = await one(owners.students, 'select id from student where tenant_id = $1 order by id', SOUTH);
  ids.northTeacher = await one(owners.staff, `select id from staff_member where tenant_id = $1 and role = 'teacher' order by id`, NORTH);
  expect(
    Object.values(ids)
      .flat()
      .every((id) => /^[0-9a-f-]{36}$/.test(id)),
  ).toBe(true);
  expect(ids.northStudents).toHaveLength(2);
  sign = await createTenantContextSigner(platform.keys.context.privateJwk);
});
afterAll(() => platform?.stop());

/** Every row of the tables a refused mutation could have written, all districts, counted as the owners. */
async function rowCounts() {
  const count = async (client: pg.Client, table: string) => Number((await client.query(`select count(*) from ${table}`)).rows[0].count);
  return {
    student: await count(owners.students, 'student'),
    enrollment: await count(owners.students, 'enrollment'),
    section: await count(owners.staff, 'section'),
    section_student: await count(owners.staff, 'section_student'),
  };
}

const ENROLL = `mutation Enroll($input: EnrollStudentInput!) { enrollStudent(input: $input) { id school { id name } } }`;
const enrolment = (schoolId: string) => ({ firstName: 'Ref', lastName: `Check ${randomUUID().slice(0, 8)}`, grade: 3, schoolId });
const SECTION = `mutation Section($input: CreateSectionInput!) { createSection(input: $input) { id students { id } } }`;
const section = (studentIds: string[]) => ({
  name: `Ref ${randomUUID().slice(0, 8)}`,
  subject: 'Reading',
  teacherId: ids.northTeacher,
  studentIds,
});

/** Runs a mutation as North Valley that must be refused with BAD_USER_INPUT, and proves it committed nothing. */
async function expectRefused(query: string, variables: unknown) {
  const before = await rowCounts();
  const { status, body } = await platform.as('north-valley', query, variables);
  expect(status).toBe(200);
  expect(body.data).toBeNull();
  expect(body.errors).toHaveLength(1);
  expect(body.errors![0]!.extensions?.code).toBe('BAD_USER_INPUT');
  expect(await rowCounts()).toEqual(before);
  return body.errors![0]!.message;
}

describe('enrollStudent: schoolId is looked up in the districts service before commit', () => {
  it("another district's school (read as its owner) → BAD_USER_INPUT naming schoolId and the id; nothing committed", async () => {
    expect(await expectRefused(ENROLL, { input: enrolment(ids.southSchool) })).toBe(
      `schoolId names no School of this district: ${ids.southSchool}`,
    );
  });

  it('a random UUID → the same answer; nothing committed', async () => {
    const random = randomUUID();
    expect(await expectRefused(ENROLL, { input: enrolment(random) })).toBe(`schoolId names no School of this district: ${random}`);
  });

  it('one valid and one foreign school in one operation → BAD_USER_INPUT naming only the foreign id; neither committed', async () => {
    // The gateway sends both fields to the students service in one request, which commits all or nothing.
    const both = `mutation ($a: EnrollStudentInput!, $b: EnrollStudentInput!) { a: enrollStudent(input: $a) { id } b: enrollStudent(input: $b) { id } }`;
    const message = await expectRefused(both, { a: enrolment(ids.northSchool), b: enrolment(ids.southSchool) });
    expect(message).toBe(`schoolId names no School of this district: ${ids.southSchool}`);
  });

  it('a school of the caller enrols the student', async () => {
    const before = await rowCounts();
    const { body } = await platform.as('north-valley', ENROLL, { input: enrolment(ids.northSchool) });
    expect(body.errors).toBeUndefined();
    const name = (await owners.districts.query('select name from school where id = $1', [ids.northSchool])).rows[0].name;
    expect(body.data.enrollStudent.school).toEqual({ id: ids.northSchool, name });
    const stored = await owners.students.query('select tenant_id, school_id from student where id = $1', [body.data.enrollStudent.id]);
    expect(stored.rows).toEqual([{ tenant_id: NORTH, school_id: ids.northSchool }]);
    expect(await rowCounts()).toEqual({ ...before, student: before.student + 1, enrollment: before.enrollment + 1 });
  });
});

describe('createSection: studentIds are looked up in the students service before commit', () => {
  it("a mix of the caller's students, another district's and a random id → BAD_USER_INPUT naming studentIds and only the bad ids", async () => {
    const random = randomUUID();
    const message = await expectRefused(SECTION, { input: section([ids.northStudents[0]!, ids.southStudent, random]) });
    expect(message).toMatch(/^studentIds names no Student of this district: /);
    expect(message.split(': ')[1]!.split(', ').sort()).toEqual([ids.southStudent, random].sort());
  });

  it("only another district's student → BAD_USER_INPUT; nothing committed", async () => {
    expect(await expectRefused(SECTION, { input: section([ids.southStudent]) })).toBe(
      `studentIds names no Student of this district: ${ids.southStudent}`,
    );
  });

  it("the caller's own students make a section", async () => {
    const before = await rowCounts();
    const { body } = await platform.as('north-valley', SECTION, { input: section(ids.northStudents) });
    expect(body.errors).toBeUndefined();
    expect(body.data.createSection.students.map((s: { id: string }) => s.id).sort()).toEqual([...ids.northStudents].sort());
    expect(await rowCounts()).toEqual({ ...before, section: before.section + 1, section_student: before.section_student + 2 });
  });

  it('an empty roster needs no lookup at all', async () => {
    statements.length = 0;
    const { body } = await platform.as('north-valley', SECTION, { input: section([]) });
    expect(body.errors).toBeUndefined();
    expect(body.data.createSection.students).toEqual([]);
    expect(statements.filter((s) => s.service === 'students')).toEqual([]);
  });
});

describe('the gateway signs the reference contexts itself', () => {
  it('ignores a client-sent x-tenant-context-districts (here a valid one of another district): the enrolment goes through', async () => {
    const captured = await sign({ tenantId: SOUTH, subject: 'captured', requestId: randomUUID() }, 'districts');
    const before = await rowCounts();
    const { body } = await platform.graphql(
      { query: ENROLL, variables: { input: enrolment(ids.northSchool) } },
      { token: await platform.token('north-valley'), headers: { [referenceContextHeader('districts')]: captured } },
    );
    // Had it reached the students service, that context (another district, another request) would be refused.
    expect(body.errors).toBeUndefined();
    expect(await rowCounts()).toEqual({ ...before, student: before.student + 1, enrollment: before.enrollment + 1 });
  });
});

describe('straight to the students subgraph, the forwarded context must be this request of this district', () => {
  const requestId = randomUUID();
  const own = { tenantId: NORTH, subject: 'references-test', requestId };
  const direct = async (forwarded: string | undefined) => {
    const before = await rowCounts();
    const headers: Record<string, string> = { [TENANT_CONTEXT_HEADER]: await sign({ ...own }, 'students') };
    if (forwarded) headers[referenceContextHeader('districts')] = forwarded;
    const result = await platform.graphql(
      { query: ENROLL.replace('school { id name }', 'id'), variables: { input: enrolment(ids.northSchool) } },
      { url: platform.subgraphs.students!.url, headers },
    );
    expect(await rowCounts()).toEqual(before);
    return result.body.errors?.map((e) => ({ message: e.message, code: e.extensions?.code }));
  };

  it.each([
    ['no forwarded context', async () => undefined, 'missing tenant context for districts'],
    [
      "another district's context for districts",
      () => sign({ ...own, tenantId: SOUTH }, 'districts'),
      "tenant context for districts is not this request's",
    ],
    [
      "the district's context of another request",
      () => sign({ ...own, requestId: randomUUID() }, 'districts'),
      "tenant context for districts is not this request's",
    ],
    ['a context for another service', () => sign({ ...own }, 'staff'), 'invalid tenant context for districts'],
  ])('%s → refused, nothing committed', async (_name, forwarded, message) => {
    expect(await direct(await forwarded())).toEqual([{ message, code: 'UNAUTHENTICATED' }]);
  });

  /** One subgraph request with two enrolments, signed as the gateway signs a mutation fetch to students. */
  async function twoEnrolments(a: string, b: string) {
    const request = { ...own, requestId: randomUUID() };
    const headers = {
      [TENANT_CONTEXT_HEADER]: await sign(request, 'students'),
      [referenceContextHeader('districts')]: await sign(request, 'districts'),
    };
    const query = `mutation ($a: EnrollStudentInput!, $b: EnrollStudentInput!) { a: enrollStudent(input: $a) { id } b: enrollStudent(input: $b) { id } }`;
    statements.length = 0;
    const { body } = await platform.graphql(
      { query, variables: { a: enrolment(a), b: enrolment(b) } },
      { url: platform.subgraphs.students!.url, headers },
    );
    // The forwarded context is single-use, so a second lookup could not even be made: one statement asks for both ids.
    const lookups = statements.filter((s) => s.service === 'districts' && /from "school"/.test(s.sql));
    expect(lookups).toHaveLength(1);
    expect(lookups[0]!.sql).toMatch(/"id" in \(\?, \?\)/);
    return body;
  }

  it('two enrolments in one request are looked up together (one _entities request, one statement) and both commit', async () => {
    const other = (
      await owners.districts.query<{ id: string }>('select id from school where tenant_id = $1 and id <> $2 limit 1', [
        NORTH,
        ids.northSchool,
      ])
    ).rows[0]!.id;
    const before = await rowCounts();
    const body = await twoEnrolments(ids.northSchool, other);
    expect(body.errors).toBeUndefined();
    expect(await rowCounts()).toEqual({ ...before, student: before.student + 2, enrollment: before.enrollment + 2 });
  });

  it('one valid and one foreign school in one request: BAD_USER_INPUT for the foreign one, and the request commits nothing', async () => {
    const before = await rowCounts();
    const body = await twoEnrolments(ids.northSchool, ids.southSchool);
    expect(body.errors).toEqual([
      {
        message: `schoolId names no School of this district: ${ids.southSchool}`,
        path: ['b'],
        extensions: { code: 'BAD_USER_INPUT' },
        locations: expect.any(Array),
      },
    ]);
    expect(await rowCounts()).toEqual(before);
  });
});

describe('a reference that dangles later (deleted by its owning service) leaves the rest of a listing intact', () => {
  it('a deleted school reads as null on its student; every other student keeps its school', async () => {
    const created = await platform.as('north-valley', 'mutation { createSchool(input: { name: "Closing Soon Elementary" }) { id } }');
    const schoolId = created.body.data.createSchool.id as string;
    const enrolled = await platform.as('north-valley', ENROLL, { input: enrolment(schoolId) });
    const orphan = enrolled.body.data.enrollStudent.id as string;
    await owners.districts.query('delete from school where tenant_id = $1 and id = $2', [NORTH, schoolId]);

    const { status, body } = await platform.as('north-valley', '{ students(first: 100) { edges { node { id school { id name } } } } }');
    expect(status).toBe(200);
    expect(body.errors).toBeUndefined();
    const nodes = body.data.students.edges.map((e: { node: { id: string; school: { id: string; name: string } | null } }) => e.node);
    const total = Number((await owners.students.query('select count(*) from student where tenant_id = $1', [NORTH])).rows[0].count);
    expect(nodes).toHaveLength(total);
    expect(nodes.find((n: { id: string }) => n.id === orphan).school).toBeNull();
    const others = nodes.filter((n: { id: string }) => n.id !== orphan);
    expect(others.length).toBeGreaterThan(0);
    for (const node of others) expect(node.school).toEqual({ id: expect.any(String), name: expect.any(String) });
  });

  it('a deleted student reads as a null roster entry; the rest of the roster and the other sections stay', async () => {
    const enrolled = await platform.as('north-valley', ENROLL, { input: enrolment(ids.northSchool) });
    const leaving = enrolled.body.data.enrollStudent.id as string;
    const created = await platform.as('north-valley', SECTION, { input: section([leaving, ids.northStudents[0]!]) });
    const sectionId = created.body.data.createSection.id as string;
    await owners.students.query('delete from enrollment where tenant_id = $1 and student_id = $2', [NORTH, leaving]);
    await owners.students.query('delete from student where tenant_id = $1 and id = $2', [NORTH, leaving]);

    const { status, body } = await platform.as('north-valley', '{ sections { id students { id lastName } } }');
    expect(status).toBe(200);
    expect(body.errors).toBeUndefined();
    const sections = body.data.sections as { id: string; students: ({ id: string; lastName: string } | null)[] }[];
    const total = Number((await owners.staff.query('select count(*) from section where tenant_id = $1', [NORTH])).rows[0].count);
    expect(sections).toHaveLength(total);
    const affected = sections.find((s) => s.id === sectionId)!;
    expect(affected.students).toHaveLength(2);
    expect(affected.students.filter((s) => s === null)).toHaveLength(1);
    expect(affected.students.find((s) => s !== null)!.id).toBe(ids.northStudents[0]);
  });
});
