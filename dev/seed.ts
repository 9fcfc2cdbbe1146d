/**
 * Demo districts for `npm start` and the tests, written through the same tenant path as every request
 * (application role, one tenant transaction per district and service). Deterministic; a district
 * already seeded in a service is left alone.
 */
import type { MikroORM } from '@mikro-orm/postgresql';
import type { InferEntity } from '@mikro-orm/core';
import { inTenantTransaction } from '../tenancy/tenant-transaction.ts';
import { District, School } from '../subgraphs/districts/entities.ts';
import { Enrollment, Student } from '../subgraphs/students/entities.ts';
import { Section, SectionStudent, StaffMember } from '../subgraphs/staff/entities.ts';

export const DEMO_DISTRICTS = [
  { slug: 'north-valley', name: 'North Valley Unified School District', tenantId: '3f6c1a52-9a7e-4c1e-8f0a-1b2c3d4e5f60' },
  { slug: 'south-ridge', name: 'South Ridge Public Schools', tenantId: '8b2d4e6f-1a3c-4e5f-9a7b-2c3d4e5f6071' },
  { slug: 'east-lake', name: 'East Lake County Schools', tenantId: 'c4e6f809-2b4d-4f60-8a1c-3d4e5f607182' },
] as const;

export const STUDENTS_PER_DEMO_DISTRICT = 24;
const FIRST_NAMES = ['Ava', 'Liam', 'Sofía', 'Noah', 'Zoë', 'Mateo', 'Amara', 'Ethan', 'Chloé', 'Kai', 'Mei', 'Omar', 'Isla', 'Jonah', 'Priya', 'Lucas'];
const LAST_NAMES = ['García', 'Nguyen', 'Smith', "O'Brien", 'Okafor', 'Kowalski', 'Haddad', 'Johansson', 'Patel', 'Müller', 'Kim', 'Rossi'];
const SUBJECTS = ['Mathematics', 'English', 'Science', 'History'];

/** A small seeded PRNG (mulberry32), so every run seeds the same names. */
function random(seed: string) {
  let state = [...seed].reduce((h, c) => Math.imul(h ^ c.charCodeAt(0), 16777619), 2166136261) >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface ServiceOrms {
  districts: MikroORM;
  students: MikroORM;
  staff: MikroORM;
}

type SchoolRow = InferEntity<typeof School>;
type StudentRow = InferEntity<typeof Student>;

export async function seedDemoDistricts(orms: ServiceOrms): Promise<void> {
  for (const demo of DEMO_DISTRICTS) {
    const next = random(demo.slug);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)]!;
    const label = demo.slug.split('-').map((w) => w[0]!.toUpperCase() + w.slice(1)).join(' ');

    const schools: SchoolRow[] = await inTenantTransaction(orms.districts, demo.tenantId, async (em) => {
      if (!(await em.findOne(District, { tenantId: demo.tenantId }))) {
        em.create(District, { name: demo.name, slug: demo.slug, status: 'active' });
        for (const kind of ['Elementary', 'Middle', 'High']) em.create(School, { name: `${label} ${kind} School` });
      }
      return em.find(School, {}, { orderBy: { name: 'asc' } });
    });

    const students: StudentRow[] = await inTenantTransaction(orms.students, demo.tenantId, async (em) => {
      if ((await em.count(Student)) === 0) {
        for (let i = 0; i < STUDENTS_PER_DEMO_DISTRICT; i++) {
          const school = schools[i % schools.length]!;
          const grade = Math.floor(next() * 13);
          const student = em.create(Student, {
            firstName: pick(FIRST_NAMES),
            lastName: pick(LAST_NAMES),
            grade,
            dateOfBirth: `${2020 - grade}-${String(1 + Math.floor(next() * 12)).padStart(2, '0')}-${String(1 + Math.floor(next() * 28)).padStart(2, '0')}`,
            schoolId: school.id,
          });
          em.create(Enrollment, { studentId: student.id, schoolId: school.id, startDate: '2026-08-20' });
        }
      }
      return em.find(Student, {}, { orderBy: { lastName: 'asc', firstName: 'asc', id: 'asc' } });
    });

    await inTenantTransaction(orms.staff, demo.tenantId, async (em) => {
      if ((await em.count(StaffMember)) > 0) return;
      SUBJECTS.forEach((subject, index) => {
        const school = schools[index % schools.length]!;
        const first = pick(FIRST_NAMES);
        const last = pick(LAST_NAMES);
        const teacher = em.create(StaffMember, {
          firstName: first,
          lastName: last,
          email: `${first}.${last}.${index}@${demo.slug}.example.org`.toLowerCase().normalize('NFD').replace(/[^a-z0-9.@-]/g, ''),
          role: 'teacher',
          schoolId: school.id,
        });
        const section = em.create(Section, { name: `${subject} ${index + 1}`, subject, teacherId: teacher.id, schoolId: school.id });
        for (const student of students.filter((_, i) => i % SUBJECTS.length === index)) {
          em.create(SectionStudent, { sectionId: section.id, studentId: student.id });
        }
      });
      em.create(StaffMember, {
        firstName: pick(FIRST_NAMES),
        lastName: pick(LAST_NAMES),
        email: `counselor@${demo.slug}.example.org`,
        role: 'counselor',
        schoolId: schools[0]!.id,
      });
    });
  }
}
