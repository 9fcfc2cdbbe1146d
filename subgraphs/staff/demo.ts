/** Demo data: a teacher and a section per subject (rostering the published `student` ids), and a counselor. */
import type { DemoSeed } from '../../subgraph-server/demo.ts';
import { Section, SectionStudent, StaffMember } from './entities.ts';

const SUBJECTS = ['Mathematics', 'English', 'Science', 'History'];

export const demo: DemoSeed = async (em, { district, firstName, lastName, ids }) => {
  const schools = ids.school;
  if (!schools?.length) throw new Error('the staff demo needs the school ids the directory demo publishes as `school`');
  if ((await em.count(StaffMember)) > 0) return;
  const students = ids.student ?? [];
  SUBJECTS.forEach((subject, index) => {
    const schoolId = schools[index % schools.length]!;
    const first = firstName();
    const last = lastName();
    const teacher = em.create(StaffMember, {
      firstName: first,
      lastName: last,
      email: `${first}.${last}.${index}@${district.slug}.example.org`
        .toLowerCase()
        .normalize('NFD')
        .replace(/[^a-z0-9.@-]/g, ''),
      role: 'teacher',
      schoolId,
    });
    const section = em.create(Section, { name: `${subject} ${index + 1}`, subject, teacherId: teacher.id, schoolId });
    for (const studentId of students.filter((_, i) => i % SUBJECTS.length === index)) {
      em.create(SectionStudent, { sectionId: section.id, studentId });
    }
  });
  em.create(StaffMember, {
    firstName: firstName(),
    lastName: lastName(),
    email: `counselor@${district.slug}.example.org`,
    role: 'counselor',
    schoolId: schools[0]!,
  });
};
