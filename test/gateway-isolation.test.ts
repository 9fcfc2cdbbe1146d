/** Through the gateway, each demo district sees and changes only its own rows. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_DISTRICTS } from '../dev/seed.ts';
import { STUDENTS_PER_DEMO_DISTRICT } from '../subgraphs/students/demo.ts';
import { demo, startTestPlatform, type DemoSlug, type TestPlatform } from './support/platform.ts';

let platform: TestPlatform;
/** Every SQL statement the subgraphs send, as the ORM logs it. */
const statements: string[] = [];
beforeAll(async () => {
  platform = await startTestPlatform({}, (_service, sql) => statements.push(sql));
});
afterAll(() => platform?.stop());

const EVERYTHING = `{
  district { id slug name status schools { id name students { id } } }
  students(first: 100) { edges { node { id firstName school { id } enrollments { id school { id } } } } pageInfo { hasNextPage } }
  staff { id email school { id } sections { id } }
  sections { id name teacher { id } school { id } students { id firstName lastName } }
}`;

interface Snapshot {
  schoolIds: string[];
  studentIds: string[];
  staffIds: string[];
  sectionIds: string[];
}

/** A query as the owner of a service database (past RLS), so expectations never come from the gateway under test. */
async function asOwner<T extends Record<string, unknown>>(service: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = await platform.connect(platform.databases[service]!.ownerUrl);
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/** The ids a district owns, read from the databases in the order the API lists them. */
async function snapshot(slug: DemoSlug): Promise<Snapshot> {
  const tenant = [demo(slug).tenantId];
  const ids = async (service: string, sql: string) => (await asOwner<{ id: string }>(service, sql, tenant)).map((r) => r.id);
  const result = {
    schoolIds: await ids('districts', 'select id from school where tenant_id = $1 order by name, id'),
    studentIds: await ids('students', 'select id from student where tenant_id = $1 order by last_name, first_name, id'),
    staffIds: await ids('staff', 'select id from staff_member where tenant_id = $1 order by last_name, first_name, id'),
    sectionIds: await ids('staff', 'select id from section where tenant_id = $1 order by name, id'),
  };
  for (const list of Object.values(result)) expect(list.length).toBeGreaterThan(0);
  return result;
}

const others = (slug: DemoSlug) => DEMO_DISTRICTS.filter((d) => d.slug !== slug).map((d) => d.slug);

describe.each(DEMO_DISTRICTS.map((d) => d.slug))('district %s', (slug) => {
  it('reads its own district, schools, students, staff and sections, and nothing else', async () => {
    const { status, body } = await platform.as(slug, EVERYTHING);
    expect(status).toBe(200);
    expect(body.errors).toBeUndefined();
    const { district, students, staff, sections } = body.data;
    const own = await snapshot(slug);
    expect(district).toMatchObject({ id: demo(slug).tenantId, slug, status: 'ACTIVE' });
    expect(district.schools.map((s: any) => s.id)).toEqual(own.schoolIds);
    expect(students.edges).toHaveLength(STUDENTS_PER_DEMO_DISTRICT);
    expect(students.edges.map((e: any) => e.node.id)).toEqual(own.studentIds);
    expect(staff.map((s: any) => s.id)).toEqual(own.staffIds);
    expect(sections.map((s: any) => s.id)).toEqual(own.sectionIds);

    const foreign = await Promise.all(others(slug).map(snapshot));
    const foreignIds = new Set(foreign.flatMap((f) => [...f.schoolIds, ...f.studentIds, ...f.staffIds, ...f.sectionIds]));
    const seen = JSON.stringify(body.data).match(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g)!;
    expect(seen.length).toBeGreaterThan(STUDENTS_PER_DEMO_DISTRICT);
    expect(seen.filter((id) => foreignIds.has(id))).toEqual([]);
    // Every school a student points to is one of the district's own.
    for (const edge of students.edges) expect(own.schoolIds).toContain(edge.node.school.id);
    // The cross-subgraph roster (staff → students) resolves only the district's own students.
    for (const section of sections) {
      expect(section.students.length).toBeGreaterThan(0);
      for (const student of section.students) expect(own.studentIds).toContain(student.id);
    }
  });

  it("gets null or empty for another district's ids", async () => {
    const [target] = others(slug);
    const theirs = await snapshot(target!);
    const { body } = await platform.as(
      slug,
      `query ($student: ID!, $school: ID!) { student(id: $student) { id firstName } school(id: $school) { id name } }`,
      { student: theirs.studentIds[0], school: theirs.schoolIds[0] },
    );
    expect(body.errors).toBeUndefined();
    expect(body.data).toEqual({ student: null, school: null });
  });

  it("cannot modify another district's student", async () => {
    const [target] = others(slug);
    const theirs = await snapshot(target!);
    const nameOf = async () =>
      (await asOwner<{ first_name: string }>('students', 'select first_name from student where id = $1', [theirs.studentIds[0]]))[0]!
        .first_name;
    const before = await nameOf();
    const { body } = await platform.as(slug, `mutation ($id: ID!) { updateStudent(id: $id, input: { firstName: "Hijacked" }) { id } }`, {
      id: theirs.studentIds[0],
    });
    expect(body.data).toEqual({ updateStudent: null });
    expect(before).not.toBe('Hijacked');
    expect(await nameOf()).toBe(before);
  });
});

describe('mutations stay inside the district', () => {
  it('a created school and enrolled student belong to the caller only', async () => {
    const north = demo('north-valley').tenantId;
    const created = await platform.as('north-valley', `mutation { createSchool(input: { name: "Isolation Academy" }) { id name } }`);
    expect(created.body.errors).toBeUndefined();
    const schoolId = created.body.data.createSchool.id;
    let studentId: string | undefined;
    try {
      const enrolled = await platform.as(
        'north-valley',
        `mutation ($school: ID!) { enrollStudent(input: { firstName: "Ada", lastName: "Lovelace", grade: 7, schoolId: $school, dateOfBirth: "2014-12-10" }) { id grade dateOfBirth school { id name } enrollments { startDate } } }`,
        { school: schoolId },
      );
      expect(enrolled.body.errors).toBeUndefined();
      const student = enrolled.body.data.enrollStudent;
      studentId = student.id;
      expect(student).toMatchObject({ grade: 7, dateOfBirth: '2014-12-10', school: { id: schoolId, name: 'Isolation Academy' } });
      expect(student.enrollments).toHaveLength(1);
      // In the databases, the rows are filed under North Valley.
      expect(await asOwner('districts', 'select tenant_id from school where id = $1', [schoolId])).toEqual([{ tenant_id: north }]);
      expect(await asOwner('students', 'select tenant_id from student where id = $1', [studentId])).toEqual([{ tenant_id: north }]);
      expect(await asOwner('students', 'select tenant_id from enrollment where student_id = $1', [studentId])).toEqual([
        { tenant_id: north },
      ]);

      const fromSouth = await platform.as(
        'south-ridge',
        `query ($s: ID!, $school: ID!) { student(id: $s) { id } school(id: $school) { id } }`,
        {
          s: student.id,
          school: schoolId,
        },
      );
      expect(fromSouth.body.data).toEqual({ student: null, school: null });
      const southSchools = await platform.as('south-ridge', `{ schools { name } }`);
      expect(southSchools.body.data.schools.length).toBeGreaterThan(0);
      expect(southSchools.body.data.schools.map((s: any) => s.name)).not.toContain('Isolation Academy');
    } finally {
      // Leave North Valley as seeded: the other tests count its rows.
      if (studentId) {
        await asOwner('students', 'delete from enrollment where tenant_id = $1 and student_id = $2', [north, studentId]);
        await asOwner('students', 'delete from student where tenant_id = $1 and id = $2', [north, studentId]);
      }
      await asOwner('districts', 'delete from school where tenant_id = $1 and id = $2', [north, schoolId]);
    }
  });

  it("a section cannot be given another district's teacher", async () => {
    const south = await snapshot('south-ridge');
    const { body } = await platform.as(
      'north-valley',
      `mutation ($teacher: ID!) { createSection(input: { name: "Stolen", subject: "Art", teacherId: $teacher, studentIds: [] }) { id } }`,
      { teacher: south.staffIds[0] },
    );
    expect(body.data).toBeNull();
    expect(body.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT' } });
    expect(await asOwner('staff', 'select tenant_id from section where name = $1', ['Stolen'])).toEqual([]);
  });

  it('invalid input is refused with BAD_USER_INPUT and writes nothing', async () => {
    const north = await snapshot('north-valley');
    const students = async () => (await asOwner<{ n: number }>('students', 'select count(*)::int as n from student'))[0]!.n;
    const enrollments = async () => (await asOwner<{ n: number }>('students', 'select count(*)::int as n from enrollment'))[0]!.n;
    const before = { students: await students(), enrollments: await enrollments() };
    expect(before.students).toBeGreaterThan(0);
    const { body } = await platform.as(
      'north-valley',
      `mutation ($school: ID!) { enrollStudent(input: { firstName: "X", lastName: "Y", grade: 14, schoolId: $school }) { id } }`,
      { school: north.schoolIds[0] },
    );
    expect(body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(body.errors?.[0]?.message).toMatch(/grade/);
    expect({ students: await students(), enrollments: await enrollments() }).toEqual(before);
    expect(await asOwner('students', 'select id from student where first_name = $1 and last_name = $2', ['X', 'Y'])).toEqual([]);
  });
});

describe('pagination', () => {
  it('walks every student once with cursors, in name order', async () => {
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    for (;;) {
      const { body }: any = await platform.as(
        'east-lake',
        `query ($after: String) { students(first: 7, after: $after) { edges { node { id lastName firstName } } pageInfo { hasNextPage endCursor } } }`,
        { after },
      );
      expect(body.data.students.edges.length).toBeGreaterThan(0);
      seen.push(...body.data.students.edges.map((e: any) => e.node.id));
      pages++;
      if (!body.data.students.pageInfo.hasNextPage) break;
      expect(pages, 'the pages never ended').toBeLessThan(10);
      after = body.data.students.pageInfo.endCursor;
    }
    expect(pages).toBe(Math.ceil(STUDENTS_PER_DEMO_DISTRICT / 7));
    expect(new Set(seen).size).toBe(seen.length);
    // Name order as PostgreSQL sorts it (last name, first name, id), read as the owner.
    expect(seen).toEqual((await snapshot('east-lake')).studentIds);
  });

  it('filters by grade and refuses a forged cursor', async () => {
    const gradeFive = (
      await asOwner<{ id: string }>(
        'students',
        'select id from student where tenant_id = $1 and grade = 5 order by last_name, first_name, id',
        [demo('east-lake').tenantId],
      )
    ).map((r) => r.id);
    expect(gradeFive.length, 'the demo seed gives East Lake grade-5 students').toBeGreaterThan(0);
    const { body } = await platform.as('east-lake', `{ students(first: 100, grade: 5) { edges { node { id grade } } } }`);
    expect(body.data.students.edges.map((e: any) => e.node.id)).toEqual(gradeFive);
    for (const edge of body.data.students.edges) expect(edge.node.grade).toBe(5);
    const forged = await platform.as('east-lake', `{ students(first: 5, after: "not-a-cursor") { edges { node { id } } } }`);
    expect(forged.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });
});

describe('health', () => {
  it('live and ready answer without a token, and carry no tenant', async () => {
    const base = new URL(platform.gateway.url);
    statements.length = 0;
    const live = await fetch(new URL('/health/live', base));
    const ready = await fetch(new URL('/health/ready', base));
    expect(live.status).toBe(200);
    expect(await live.json()).toEqual({ status: 'ok', service: 'gateway' });
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', service: 'gateway' });
    // Readiness reached every subgraph's database (the statements show it), and no tenant was set on the way.
    expect(statements.length).toBeGreaterThanOrEqual(Object.keys(platform.subgraphs).length);
    expect(statements.filter((sql) => /set_config|current_tenant/.test(sql))).toEqual([]);
  });
});
