/**
 * The `Date` scalar (graphql-scalars, subgraph-server/scalars.ts) through the gateway: `YYYY-MM-DD` out and in,
 * and a date that is not one answers BAD_USER_INPUT naming the field, whether sent as a variable or inline; the
 * scalar and its description reach the API schema clients introspect.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';

let platform: TestPlatform;
let schoolId: string;

const ENROLL = `mutation ($input: EnrollStudentInput!) {
  enrollStudent(input: $input) { id dateOfBirth enrollments { startDate endDate } }
}`;
const student = (dateOfBirth: unknown, startDate?: unknown) => ({
  input: { firstName: 'Ada', lastName: 'Lovelace', grade: 7, schoolId, dateOfBirth, ...(startDate === undefined ? {} : { startDate }) },
});

beforeAll(async () => {
  platform = await startTestPlatform();
  const schools = await platform.as('north-valley', '{ schools(first: 1) { id } }');
  schoolId = schools.body.data.schools[0].id;
});
afterAll(() => platform?.stop());

describe('Date scalar', () => {
  it('is introspected with its description and wire format, like every field it types', async () => {
    const result = await platform.as(
      'north-valley',
      '{ __type(name: "Date") { kind description } student: __type(name: "Student") { fields { name description type { name } } } }',
    );
    expect(result.body.data.__type).toEqual({ kind: 'SCALAR', description: expect.stringContaining('`YYYY-MM-DD`') });
    expect(result.body.data.student.fields).toContainEqual({
      name: 'dateOfBirth',
      description: 'The date of birth; null when the district never recorded it.',
      type: { name: 'Date' },
    });
  });

  it('takes and answers YYYY-MM-DD exactly as sent, and null clears it', async () => {
    const result = await platform.as('north-valley', ENROLL, student('2014-12-10', '2024-02-29'));
    expect(result.body.errors).toBeUndefined();
    expect(result.body.data.enrollStudent).toMatchObject({
      dateOfBirth: '2014-12-10',
      enrollments: [{ startDate: '2024-02-29', endDate: null }],
    });
    const { id } = result.body.data.enrollStudent;
    const read = await platform.as('north-valley', 'query ($id: ID!) { student(id: $id) { dateOfBirth } }', { id });
    expect(read.body.data.student).toEqual({ dateOfBirth: '2014-12-10' });
    const cleared = await platform.as(
      'north-valley',
      'mutation ($id: ID!) { updateStudent(id: $id, input: { dateOfBirth: null }) { dateOfBirth } }',
      { id },
    );
    expect(cleared.body.data.updateStudent).toEqual({ dateOfBirth: null });
  });

  it.each([['2023-02-29'], ['2014-13-01'], ['10/12/2014'], ['2014-12-10T00:00:00Z'], [20141210]])(
    'refuses %j sent as a variable with BAD_USER_INPUT naming the field',
    async (value) => {
      const result = await platform.as('north-valley', ENROLL, student(value));
      expect(result.body.data ?? null).toBeNull();
      expect(result.body.errors).toHaveLength(1);
      expect(result.status).toBe(400);
      expect(result.body.errors![0]!.extensions?.code).toBe('BAD_USER_INPUT');
      expect(result.body.errors![0]!.message).toContain('"input.dateOfBirth"');
    },
  );

  it('refuses a date that does not exist written inline with BAD_USER_INPUT naming the field', async () => {
    const result = await platform.as(
      'north-valley',
      `mutation { enrollStudent(input: { firstName: "Ada", lastName: "Lovelace", grade: 7, schoolId: "${schoolId}", startDate: "2023-02-29" }) { id } }`,
    );
    expect(result.body.errors![0]!.extensions?.code).toBe('BAD_USER_INPUT');
    expect(result.body.errors![0]!.message).toContain('startDate');
    expect(result.body.errors).toHaveLength(1);
  });
});
