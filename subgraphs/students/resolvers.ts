import type { InferEntity } from '@mikro-orm/core';
import type { RequestContext } from '../../subgraph-server/subgraph.ts';
import type { Resolvers } from './generated/resolvers-types.ts';
import type { ReferenceDeclaration, ReferenceDeclarations } from '../../subgraph-server/references.ts';
import { badInput } from '../../http/errors.ts';
import { gradeLevel, isoDate, listSize, optionalText, requiredId, requiredText } from '../../subgraph-server/input.ts';
import { DateScalar } from '../../subgraph-server/scalars.ts';
import { isUuid } from '../../tenancy/tenant-context.ts';
import { CursorRefused, plainPage } from '../../subgraph-server/plain-reads.ts';
import { Enrollment, Student } from './entities.ts';

type StudentRow = InferEntity<typeof Student>;
type EnrollmentRow = InferEntity<typeof Enrollment>;

const MAX_PAGE = 100;
/** Nested lists: each level of a query fans out by at most this much. */
const MAX_NESTED = 100;
const BY_NAME = { lastName: 'asc', firstName: 'asc', id: 'asc' } as const;
const schoolRef = (row: { schoolId: string }) => ({ __typename: 'School', id: row.schoolId });

/** `schoolId` names a School of the districts service: looked up there before the enrolment commits. */
const ENROLLMENT_SCHOOL: ReferenceDeclaration = {
  service: 'districts',
  type: 'School',
  field: 'schoolId',
  ids: (args) => [(args.input as { schoolId?: unknown } | undefined)?.schoolId],
};
export const references: ReferenceDeclarations = { enrollStudent: [ENROLLMENT_SCHOOL] };

export const resolvers: Resolvers = {
  Date: DateScalar,
  Query: {
    async students(_root, { first, after, grade }, { em }) {
      if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE) throw badInput(`first must be from 1 to ${MAX_PAGE}`);
      const where: Record<string, number> = grade === undefined || grade === null ? {} : { grade: gradeLevel(grade) };
      // A root Query field: only ever read in a read-only operation, so the plain rows of the fast read path.
      let page;
      try {
        page = await plainPage(em, Student, { where, first, after: after ?? undefined, orderBy: BY_NAME });
      } catch (error) {
        if (error instanceof CursorRefused) throw badInput('after is not a cursor returned by this API');
        throw error;
      }
      return {
        edges: page.items.map((node) => ({ node: node as StudentRow, cursor: page.cursorOf(node) })),
        pageInfo: { hasNextPage: page.hasNextPage, endCursor: page.endCursor },
      };
    },
    student: (_root, { id }, { loaders }) => loaders.one<StudentRow>(Student).load(id),
  },
  Mutation: {
    async enrollStudent(_root, { input }, { em, references }) {
      const fields = {
        firstName: requiredText(input.firstName, 'firstName', 100),
        lastName: requiredText(input.lastName, 'lastName', 100),
        grade: gradeLevel(input.grade),
        dateOfBirth: input.dateOfBirth == null ? null : isoDate(input.dateOfBirth, 'dateOfBirth'),
        schoolId: requiredId(input.schoolId, 'schoolId'),
      };
      const startDate = input.startDate == null ? new Date().toISOString().slice(0, 10) : isoDate(input.startDate, 'startDate');
      references.assertExist(ENROLLMENT_SCHOOL, [fields.schoolId]);
      const student = em.create(Student, fields);
      em.create(Enrollment, { studentId: student.id, schoolId: student.schoolId, startDate });
      await em.flush();
      return student;
    },
    async updateStudent(_root, { id, input }, { em, loaders }) {
      if (!isUuid(id)) return null;
      const student = await loaders.one<StudentRow>(Student).load(id);
      if (!student) return null;
      em.assign(student, {
        firstName: optionalText(input.firstName, 'firstName', 100) ?? student.firstName,
        lastName: optionalText(input.lastName, 'lastName', 100) ?? student.lastName,
        grade: input.grade == null ? student.grade : gradeLevel(input.grade),
        dateOfBirth:
          input.dateOfBirth === undefined
            ? student.dateOfBirth
            : input.dateOfBirth === null
              ? null
              : isoDate(input.dateOfBirth, 'dateOfBirth'),
      });
      await em.flush();
      return student;
    },
  },
  Student: {
    __resolveReference: (ref: { id: string }, { loaders }: RequestContext) => loaders.one<StudentRow>(Student).load(ref.id),
    school: schoolRef,
    enrollments: (student: StudentRow, { first }, { loaders }) =>
      loaders
        .many<EnrollmentRow>(Enrollment, 'studentId', { limit: listSize(first, MAX_NESTED), orderBy: { startDate: 'asc', id: 'asc' } })
        .load(student.id),
  },
  Enrollment: {
    school: schoolRef,
  },
  School: {
    // The school itself lives in the districts service; this service only knows its students.
    __resolveReference: (ref: { id: string }) => ({ id: ref.id }),
    students: (school: { id: string }, { first }, { loaders }) =>
      loaders.many<StudentRow>(Student, 'schoolId', { limit: listSize(first, MAX_NESTED), orderBy: BY_NAME }).load(school.id),
  },
};
