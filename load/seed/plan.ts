/**
 * The shape of the scale data, computed and never stored: which districts exist, how large each is, and
 * every row of each, generated deterministically from (seed, district, kind, n). A resumed seed, the
 * student rows and the roster rows (held by different services) therefore agree on every id without reading each other.
 */

export interface SeedShape {
  districts: number;
  students: number;
  /** Names the data set: two seeds give two disjoint sets of district ids. */
  seed: string;
}

export interface DistrictPlan {
  index: number;
  tenantId: string;
  slug: string;
  name: string;
  students: number;
  schools: number;
  staff: number;
  sections: number;
}

/** Ratios close to US public schools: ~500 students a school, ~15 a staff member, ~25 a class section. */
export const STUDENTS_PER_SCHOOL = 500;
export const STUDENTS_PER_STAFF = 15;
export const STUDENTS_PER_SECTION = 25;
export const MIN_STUDENTS_PER_DISTRICT = 20;
export const LOAD_SLUG_PREFIX = 'load-';

const FIRST_NAMES = [
  'Ava',
  'Liam',
  'Sofía',
  'Noah',
  'Zoë',
  'Mateo',
  'Amara',
  'Ethan',
  'Chloé',
  'Kai',
  'Mei',
  'Omar',
  'Isla',
  'Jonah',
  'Priya',
  'Lucas',
  'Aaliyah',
  'Ben',
  'Carmen',
  'Diego',
  'Elif',
  'Finn',
  'Grace',
  'Hugo',
  'Ines',
  'Jamal',
  'Keiko',
  'Leo',
  'Maya',
  'Nia',
  'Oscar',
  'Rosa',
];
const LAST_NAMES = [
  'García',
  'Nguyen',
  'Smith',
  "O'Brien",
  'Okafor',
  'Kowalski',
  'Haddad',
  'Johansson',
  'Patel',
  'Müller',
  'Kim',
  'Rossi',
  'Adeyemi',
  'Brown',
  'Chen',
  'Dubois',
  'Eriksen',
  'Fischer',
  'Gomez',
  'Hansen',
  'Ivanova',
  'Jones',
  'Khan',
  'Lopez',
  'Martin',
  'Novak',
];
const SUBJECTS = ['Mathematics', 'English', 'Science', 'History', 'Art', 'Music', 'Physical Education', 'Computer Science'];
const SCHOOL_KINDS = ['Elementary', 'Middle', 'High'];

/** 32-bit mixing (murmur3 finaliser): fast, stateless, well spread. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function hashText(text: string): number {
  let h = 2166136261;
  for (const char of text) h = Math.imul(h ^ char.codePointAt(0)!, 16777619);
  return mix(h >>> 0);
}

const hex8 = (n: number) => n.toString(16).padStart(8, '0');

/** Kinds of generated ids; each is its own id space. */
export const KIND = { district: 1, school: 2, student: 3, enrollment: 4, staff: 5, section: 6 } as const;
type Kind = (typeof KIND)[keyof typeof KIND];

/** A deterministic, random-looking version-4-shaped UUID for (seed, district, kind, n). */
export function uuidFor(seedHash: number, district: number, kind: Kind, n: number): string {
  const a = mix(seedHash ^ mix(district * 0x9e3779b1 + kind));
  const b = mix(a ^ mix(n + 0x632be5ab));
  const c = mix(b ^ 0x5bd1e995 ^ n);
  const d = mix(c + a);
  const hb = hex8(b);
  const hc = hex8(c);
  // Version nibble 4, variant 10xx: PostgreSQL accepts any hex, but the shape keeps tools that check it happy.
  return `${hex8(a)}-${hb.slice(0, 4)}-4${hb.slice(5, 8)}-${((parseInt(hc[0]!, 16) & 0x3) | 0x8).toString(16)}${hc.slice(1, 4)}-${hc.slice(4)}${hex8(d)}`;
}

/**
 * District sizes: a Zipf-like curve (size ∝ 1/(rank+1)), so a handful of districts hold a large share
 * and a long tail is small, as in real states. Every district gets at least MIN_STUDENTS_PER_DISTRICT.
 */
export function districtSizes(districts: number, students: number): number[] {
  if (!Number.isInteger(districts) || districts < 1) throw new Error('--districts must be a positive integer');
  if (!Number.isInteger(students) || students < districts * MIN_STUDENTS_PER_DISTRICT) {
    throw new Error(
      `--students must be an integer of at least ${MIN_STUDENTS_PER_DISTRICT} per district (${districts * MIN_STUDENTS_PER_DISTRICT})`,
    );
  }
  const weights = Array.from({ length: districts }, (_, rank) => 1 / (rank + 2));
  const spare = students - districts * MIN_STUDENTS_PER_DISTRICT;
  const total = weights.reduce((sum, w) => sum + w, 0);
  const sizes = weights.map((w) => MIN_STUDENTS_PER_DISTRICT + Math.floor((spare * w) / total));
  sizes[0]! += students - sizes.reduce((sum, s) => sum + s, 0);
  return sizes;
}

export function planDistricts(shape: SeedShape): DistrictPlan[] {
  const seedHash = hashText(shape.seed);
  const width = Math.max(4, String(shape.districts).length);
  return districtSizes(shape.districts, shape.students).map((students, index) => {
    const number = String(index + 1).padStart(width, '0');
    return {
      index,
      tenantId: uuidFor(seedHash, index, KIND.district, 0),
      slug: `${LOAD_SLUG_PREFIX}${number}`,
      name: `Load Test District ${number}`,
      students,
      schools: Math.max(1, Math.ceil(students / STUDENTS_PER_SCHOOL)),
      staff: Math.max(2, Math.ceil(students / STUDENTS_PER_STAFF)),
      sections: Math.max(1, Math.ceil(students / STUDENTS_PER_SECTION)),
    };
  });
}

/** Row generators, one per table, yielding tab-separated COPY text lines in the column order of COLUMNS. */
export function rowsFor(shape: SeedShape, district: DistrictPlan) {
  const seedHash = hashText(shape.seed);
  const id = (kind: Kind, n: number) => uuidFor(seedHash, district.index, kind, n);
  const t = district.tenantId;
  const pick = <T>(list: readonly T[], n: number, salt: number): T => list[mix(n * 31 + salt + district.index) % list.length]!;
  const schoolOf = (student: number) => id(KIND.school, student % district.schools);
  const gradeOf = (student: number) => (mix(student ^ 0x1234567 ^ district.index) % 14) - 1;
  const sectionOf = (student: number) => Math.floor(student / STUDENTS_PER_SECTION) % district.sections;
  // Staff 0 .. sections-1 (capped at the staff count) teach; the rest are counselors and administrators.
  const teachers = Math.max(1, Math.min(district.sections, district.staff - 1));

  return {
    *schools() {
      for (let n = 0; n < district.schools; n++) {
        yield `${t}\t${id(KIND.school, n)}\t${district.name.replace('Load Test District', 'School')} ${SCHOOL_KINDS[n % 3]} ${n + 1}\n`;
      }
    },
    *students() {
      for (let n = 0; n < district.students; n++) {
        const grade = gradeOf(n);
        const birthMonth = String(1 + (mix(n + 7) % 12)).padStart(2, '0');
        const birthDay = String(1 + (mix(n + 11) % 28)).padStart(2, '0');
        yield `${t}\t${id(KIND.student, n)}\t${pick(FIRST_NAMES, n, 1)}\t${pick(LAST_NAMES, n, 2)}\t${grade}\t${2020 - grade}-${birthMonth}-${birthDay}\t${schoolOf(n)}\n`;
      }
    },
    *enrollments() {
      for (let n = 0; n < district.students; n++) {
        yield `${t}\t${id(KIND.enrollment, n)}\t${id(KIND.student, n)}\t${schoolOf(n)}\t2026-08-20\n`;
      }
    },
    *staff() {
      for (let n = 0; n < district.staff; n++) {
        const role = n < teachers ? 'teacher' : n % 3 === 0 ? 'administrator' : 'counselor';
        const first = pick(FIRST_NAMES, n, 3);
        const last = pick(LAST_NAMES, n, 4);
        const email = `${first}.${last}.${n}@${district.slug}.example.org`
          .toLowerCase()
          .normalize('NFD')
          .replace(/[^a-z0-9.@-]/g, '');
        yield `${t}\t${id(KIND.staff, n)}\t${first}\t${last}\t${email}\t${role}\t${id(KIND.school, n % district.schools)}\n`;
      }
    },
    *sections() {
      for (let n = 0; n < district.sections; n++) {
        const subject = SUBJECTS[n % SUBJECTS.length]!;
        yield `${t}\t${id(KIND.section, n)}\t${subject} ${n + 1}\t${subject}\t${id(KIND.staff, n % teachers)}\t${id(KIND.school, n % district.schools)}\n`;
      }
    },
    /** Every student sits in exactly one section, ~25 to a section. */
    *roster() {
      for (let n = 0; n < district.students; n++) yield `${t}\t${id(KIND.section, sectionOf(n))}\t${id(KIND.student, n)}\n`;
    },
    /** A few ids of each kind, for the load scenarios' variables. */
    samples(count: number) {
      const spread = (total: number) =>
        Array.from({ length: Math.min(count, total) }, (_, i) => Math.floor((i * total) / Math.min(count, total)));
      return {
        studentId: spread(district.students).map((n) => id(KIND.student, n)),
        schoolId: spread(district.schools).map((n) => id(KIND.school, n)),
        teacherId: spread(teachers).map((n) => id(KIND.staff, n)),
        sectionId: spread(district.sections).map((n) => id(KIND.section, n)),
      };
    },
  };
}

/** The explicit column lists of every COPY: columns added later by migrations (nullable) do not break it. */
export const COLUMNS = {
  school: ['tenant_id', 'id', 'name'],
  student: ['tenant_id', 'id', 'first_name', 'last_name', 'grade', 'date_of_birth', 'school_id'],
  enrollment: ['tenant_id', 'id', 'student_id', 'school_id', 'start_date'],
  staff_member: ['tenant_id', 'id', 'first_name', 'last_name', 'email', 'role', 'school_id'],
  section: ['tenant_id', 'id', 'name', 'subject', 'teacher_id', 'school_id'],
  section_student: ['tenant_id', 'section_id', 'student_id'],
} as const;

export type SeedTable = keyof typeof COLUMNS;

/** Rows a district puts into each table, for progress totals. */
export const rowCount = (d: DistrictPlan): Record<SeedTable, number> => ({
  school: d.schools,
  student: d.students,
  enrollment: d.students,
  staff_member: d.staff,
  section: d.sections,
  section_student: d.students,
});
