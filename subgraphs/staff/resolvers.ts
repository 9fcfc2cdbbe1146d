import type { InferEntity } from '@mikro-orm/core';
import type { RequestContext } from '../../subgraph-server/subgraph.ts';
import type { Resolvers } from './generated/resolvers-types.ts';
import type { ReferenceDeclaration, ReferenceDeclarations } from '../../subgraph-server/references.ts';
import { badInput } from '../../http/errors.ts';
import { listSize, requiredId, requiredText } from '../../subgraph-server/input.ts';
import { graphqlEnumValue } from '../../subgraph-server/graphql-enum.ts';
import { plainPage } from '../../subgraph-server/plain-reads.ts';
import { Section, SectionStudent, StaffMember } from './entities.ts';

type StaffRow = InferEntity<typeof StaffMember>;
type SectionRow = InferEntity<typeof Section>;
type RosterRow = InferEntity<typeof SectionStudent>;

const MAX_ROSTER = 200;
/** Lists other than a roster: at most this many per level of a query. */
const MAX_LIST = 100;
const schoolRef = (row: { schoolId: string }) => ({ __typename: 'School', id: row.schoolId });

/** `studentIds` name Students of the students service: looked up there before the section commits. */
const ROSTER_STUDENTS: ReferenceDeclaration = {
  service: 'students',
  type: 'Student',
  field: 'studentIds',
  ids: (args) => (args.input as { studentIds?: unknown[] } | undefined)?.studentIds ?? [],
};
export const references: ReferenceDeclarations = { createSection: [ROSTER_STUDENTS] };

export const resolvers: Resolvers = {
  Query: {
    // Root Query lists: only ever read in a read-only operation, so through the fast read path.
    staff: async (_root, { first }, { em }) =>
      (
        await plainPage(em, StaffMember, {
          where: {},
          orderBy: { lastName: 'asc', firstName: 'asc', id: 'asc' },
          first: listSize(first, MAX_LIST),
        })
      ).items as StaffRow[],
    sections: async (_root, { first }, { em }) =>
      (await plainPage(em, Section, { where: {}, orderBy: { name: 'asc', id: 'asc' }, first: listSize(first, MAX_LIST) }))
        .items as SectionRow[],
    section: (_root, { id }, { loaders }) => loaders.one<SectionRow>(Section).load(id),
  },
  Mutation: {
    async createSection(_root, { input }, { em, loaders, references }) {
      const teacherId = requiredId(input.teacherId, 'teacherId');
      const studentIds: string[] = [...new Set<string>(input.studentIds.map((id: unknown) => requiredId(id, 'studentIds')))];
      if (studentIds.length > MAX_ROSTER) throw badInput(`a section holds at most ${MAX_ROSTER} students`);
      // Only this district's staff are visible, so another district's teacher reads as unknown.
      const teacher = await loaders.one<StaffRow>(StaffMember).load(teacherId);
      if (!teacher) throw badInput('teacherId does not name a staff member of this district');
      references.assertExist(ROSTER_STUDENTS, studentIds);
      const section = em.create(Section, {
        name: requiredText(input.name, 'name', 200),
        subject: requiredText(input.subject, 'subject', 100),
        teacherId,
        schoolId: teacher.schoolId,
      });
      for (const studentId of studentIds) em.create(SectionStudent, { sectionId: section.id, studentId });
      await em.flush();
      return section;
    },
  },
  StaffMember: {
    __resolveReference: (ref: { id: string }, { loaders }: RequestContext) => loaders.one<StaffRow>(StaffMember).load(ref.id),
    role: (staff: StaffRow) => graphqlEnumValue(staff.role),
    school: schoolRef,
    sections: (staff: StaffRow, { first }, { loaders }) =>
      loaders
        .many<SectionRow>(Section, 'teacherId', { limit: listSize(first, MAX_LIST), orderBy: { name: 'asc', id: 'asc' } })
        .load(staff.id),
  },
  Section: {
    __resolveReference: (ref: { id: string }, { loaders }: RequestContext) => loaders.one<SectionRow>(Section).load(ref.id),
    async teacher(section: SectionRow, _args, { loaders }) {
      const teacher = await loaders.one<StaffRow>(StaffMember).load(section.teacherId);
      // The foreign key (tenant_id, teacher_id) → staff_member guarantees the row; the SDL says so (StaffMember!).
      if (!teacher) throw new Error(`section ${section.id}: teacher ${section.teacherId} not found`);
      return teacher;
    },
    school: schoolRef,
    async students(section: SectionRow, { first }, { loaders }) {
      const roster = await loaders
        .many<RosterRow>(SectionStudent, 'sectionId', { limit: listSize(first, MAX_ROSTER), orderBy: { studentId: 'asc' } })
        .load(section.id);
      return roster.map((entry) => ({ __typename: 'Student', id: entry.studentId }));
    },
  },
};
