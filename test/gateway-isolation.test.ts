/** Through the gateway, each demo district sees and changes only its own rows. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_DISTRICTS } from '../dev/seed.ts';
import { STUDENTS_PER_DEMO_DISTRICT } from '../subgraphs/students/demo.ts';
import { demo, startTestPlatform, type DemoSlug, type TestPlatform } from './support/platform.ts';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform();
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
const snapshots = new Map<DemoSlug, Snapshot>();

async function snapshot(slug: DemoSlug): Promise<Snapshot> {
  const cached = snapshots.get(slug);
  if (cached) return cached;
  const { body } = await platform.as(slug, EVERYTHING);
  const data = body.data;
  const result = {
    schoolIds: data.district.schools.map((s: any) => s.id),
    studentIds: data.students.edges.map((e: any) => e.node.id),
    staffIds: data.staff.map((s: any) => s.id),
    sectionIds: data.sections.map((s: any) => s.id),
  };
  snapshots.set(slug, result);
  return result;
}

const others = (slug: DemoSlug) => DEMO_DISTRICTS.filter((d) => d.slug !== slug).map((d) => d.slug);

describe.each(DEMO_DISTRICTS.map((d) => d.slug))('district %s', (slug) => {
  it('reads its own district, schools, students, staff and sections, and nothing else', async () => {
    const { status, body } = await platform.as(slug, EVERYTHING);
    expect(status).toBe(200);
    expect(body.errors).toBeUndefined();
    const { district, students, staff, sections } = body.data;
    expect(district).toMatchObject({ id: demo(slug).tenantId, slug, status: 'ACTIVE' });
    expect(district.schools).toHaveLength(3);
    expect(students.edges).toHaveLength(STUDENTS_PER_DEMO_DISTRICT);
    expect(staff.length).toBeGreaterThan(0);
    expect(sections.length).toBeGreaterThan(0);

    const own = await snapshot(slug);
    const foreign = await Promise.all(others(slug).map(snapshot));
    const foreignIds = new Set(foreign.flatMap((f) => [...f.schoolIds, ...f.studentIds, ...f.staffIds, ...f.sectionIds]));
    const seen = JSON.stringify(body.data).match(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g)!;
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
    const { body } = await platform.as(slug, `mutation ($id: ID!) { updateStudent(id: $id, input: { firstName: "Hijacked" }) { id } }`, {
      id: theirs.studentIds[0],
    });
    expect(body.data).toEqual({ updateStudent: null });
    const check = await platform.as(target!, `query ($id: ID!) { student(id: $id) { firstName } }`, { id: theirs.studentIds[0] });
    expect(check.body.data.student.firstName).not.toBe('Hijacked');
  });
});

describe('mutations stay inside the district', () => {
  it('a created school and enrolled student belong to the caller only', async () => {
    const created = await platform.as('north-valley', `mutation { createSchool(input: { name: "Isolation Academy" }) { id name } }`);
    expect(created.body.errors).toBeUndefined();
    const schoolId = created.body.data.createSchool.id;

    const enrolled = await platform.as(
      'north-valley',
      `mutation ($school: ID!) { enrollStudent(input: { firstName: "Ada", lastName: "Lovelace", grade: 7, schoolId: $school, dateOfBirth: "2014-12-10" }) { id grade dateOfBirth school { id name } enrollments { startDate } } }`,
      { school: schoolId },
    );
    expect(enrolled.body.errors).toBeUndefined();
    const student = enrolled.body.data.enrollStudent;
    expect(student).toMatchObject({ grade: 7, dateOfBirth: '2014-12-10', school: { id: schoolId, name: 'Isolation Academy' } });
    expect(student.enrollments).toHaveLength(1);

    const fromSouth = await platform.as('south-ridge', `query ($s: ID!, $school: ID!) { student(id: $s) { id } school(id: $school) { id } }`, {
      s: student.id,
      school: schoolId,
    });
    expect(fromSouth.body.data).toEqual({ student: null, school: null });
    const southSchools = await platform.as('south-ridge', `{ schools { name } }`);
    expect(southSchools.body.data.schools.map((s: any) => s.name)).not.toContain('Isolation Academy');
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
    const sections = await platform.as('north-valley', `{ sections { name } }`);
    expect(sections.body.data.sections.map((s: any) => s.name)).not.toContain('Stolen');
  });

  it('invalid input is refused with BAD_USER_INPUT and writes nothing', async () => {
    const north = await snapshot('north-valley');
    const { body } = await platform.as(
      'north-valley',
      `mutation ($school: ID!) { enrollStudent(input: { firstName: "X", lastName: "Y", grade: 14, schoolId: $school }) { id } }`,
      { school: north.schoolIds[0] },
    );
    expect(body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(body.errors?.[0]?.message).toMatch(/grade/);
  });
});

describe('pagination', () => {
  it('walks every student once with cursors, in name order', async () => {
    const seen: string[] = [];
    let after: string | null = null;
    for (let page = 0; page < 10; page++) {
      const { body }: any = await platform.as(
        'east-lake',
        `query ($after: String) { students(first: 7, after: $after) { edges { node { id lastName firstName } } pageInfo { hasNextPage endCursor } } }`,
        { after },
      );
      seen.push(...body.data.students.edges.map((e: any) => e.node.id));
      if (!body.data.students.pageInfo.hasNextPage) break;
      after = body.data.students.pageInfo.endCursor;
    }
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual((await snapshot('east-lake')).studentIds);
  });

  it('filters by grade and refuses a forged cursor', async () => {
    const { body } = await platform.as('east-lake', `{ students(first: 100, grade: 5) { edges { node { grade } } } }`);
    for (const edge of body.data.students.edges) expect(edge.node.grade).toBe(5);
    const forged = await platform.as('east-lake', `{ students(first: 5, after: "not-a-cursor") { edges { node { id } } } }`);
    expect(forged.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });
});

describe('health', () => {
  it('live and ready answer without a token, and carry no tenant', async () => {
    const base = new URL(platform.gateway.url);
    const live = await fetch(new URL('/health/live', base));
    const ready = await fetch(new URL('/health/ready', base));
    expect(live.status).toBe(200);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready' });
  });
});
