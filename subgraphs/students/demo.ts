/** Demo data: students with one enrollment each, spread over the schools published as `school`. Publishes `student`. */
import type { DemoSeed } from '../../subgraph-server/demo.ts';
import { Enrollment, Student } from './entities.ts';

export const STUDENTS_PER_DEMO_DISTRICT = 24;

export const demo: DemoSeed = async (em, { random, firstName, lastName, ids }) => {
  const schools = ids.school;
  if (!schools?.length) throw new Error('the students demo needs the school ids the directory demo publishes as `school`');
  if ((await em.count(Student)) === 0) {
    for (let i = 0; i < STUDENTS_PER_DEMO_DISTRICT; i++) {
      const schoolId = schools[i % schools.length]!;
      const grade = Math.floor(random() * 13);
      const student = em.create(Student, {
        firstName: firstName(),
        lastName: lastName(),
        grade,
        dateOfBirth: `${2020 - grade}-${String(1 + Math.floor(random() * 12)).padStart(2, '0')}-${String(1 + Math.floor(random() * 28)).padStart(2, '0')}`,
        schoolId,
      });
      em.create(Enrollment, { studentId: student.id, schoolId, startDate: '2026-08-20' });
    }
  }
  const students = await em.find(Student, {}, { orderBy: { lastName: 'asc', firstName: 'asc', id: 'asc' } });
  return { student: students.map((student) => student.id) };
};
