/**
 * Legacy fixture districts: one database per district with the legacy schema, filled server-side with
 * `generate_series` (fast: no rows cross the wire). Every value is a function of (seed, slug, table, id)
 * through md5, so the same seed always produces the same databases. Ids are serial integers starting at 1
 * in every district, so they collide across districts exactly as the real ones do.
 */
import { escapeIdentifier, escapeLiteral } from 'pg';
import { connect, SourceTemplate } from './source-url.ts';
import { LEGACY_DDL } from './schema.ts';

const PLACES = [
  'maple-creek',
  'north-valley',
  'cedar-falls',
  'river-bend',
  'pine-hill',
  'lake-shore',
  'stone-bridge',
  'elm-grove',
  'sunset-ridge',
  'fox-hollow',
  'clear-water',
  'eagle-rock',
  'silver-lake',
  'oak-park',
  'bay-view',
  'mill-town',
  'red-mesa',
  'blue-spring',
  'iron-gate',
  'willow-bend',
];
const KINDS = [
  ['unified', 'Unified School District'],
  ['county', 'County Schools'],
  ['public', 'Public Schools'],
  ['city', 'City Schools'],
  ['isd', 'Independent School District'],
] as const;
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
  'Łucja',
  'Søren',
  'Ngọc',
  '美咲',
  'Renée',
  'José',
  'Aoife',
  'Dmitrí',
];
const LAST_NAMES = [
  'García',
  'Nguyễn',
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
  'Ólafsdóttir',
  '王',
  'Żółć',
  'Van der Berg',
  'Al-Hassan',
  'Brontë',
];
const SUBJECTS = ['Mathematics', 'English', 'Science', 'History', 'Art', 'Música', 'Français', 'Physical Education'];
const SCHOOL_KINDS = ['Elementary', 'Middle', 'High', 'Academy', 'Montessori'];

export interface LegacyDistrict {
  slug: string;
  name: string;
}

/** The first `count` fixture districts: deterministic slugs and names. */
export function fixtureDistricts(count: number): LegacyDistrict[] {
  return Array.from({ length: count }, (_, i) => {
    const place = PLACES[i % PLACES.length]!;
    const [kindSlug, kindName] = KINDS[Math.floor(i / PLACES.length) % KINDS.length]!;
    const round = Math.floor(i / (PLACES.length * KINDS.length));
    const label = place
      .split('-')
      .map((w) => w[0]!.toUpperCase() + w.slice(1))
      .join(' ');
    return { slug: `${place}-${kindSlug}${round ? `-${round + 1}` : ''}`, name: `${label} ${kindName}${round ? ` ${round + 1}` : ''}` };
  });
}

/** Row counts a district of `students` students gets (the benchmark reports rows, not students). */
export function fixtureShape(students: number) {
  const staff = Math.max(8, Math.ceil(students / 15));
  return { schools: Math.max(3, Math.ceil(students / 500)), students, enrollments: students + Math.floor(students / 5), staff };
}

/**
 * The generating statements. `pg_temp.rnd(key)` is a session-local pseudo-random number in [0, 1) from
 * md5(seed:key); `@first_names` and the like are the name lists, bound as parameters by `bind`.
 */
function generationSql(students: number): string[] {
  const shape = fixtureShape(students);
  const pick = (list: keyof typeof NAME_LISTS, key: string) =>
    `(@${list}::text[])[1 + floor(pg_temp.rnd(${key}) * cardinality(@${list}::text[]))::int]`;
  return [
    `insert into schools (id, name, created_at)
       select i, initcap(split_part(p.name, ' ', 1)) || ' ' || ${pick('school_kinds', `'school:' || i`)} || ' School ' || i,
              timestamptz '2001-08-01 00:00:00+00' + floor(pg_temp.rnd('school-created:' || i) * 4e14)::bigint * interval '1 microsecond'
         from generate_series(1, ${shape.schools}) i, district_profile p`,
    `insert into students (id, school_id, first_name, last_name, grade, date_of_birth, gpa, created_at)
       select i, 1 + (i % ${shape.schools}), ${pick('first_names', `'first:' || i`)}, ${pick('last_names', `'last:' || i`)}, g.grade,
              case when pg_temp.rnd('dob-null:' || i) < 0.03 then null
                   else date '2019-09-01' - (g.grade * 365 + floor(pg_temp.rnd('dob:' || i) * 365)::int) end,
              case when pg_temp.rnd('gpa-null:' || i) < 0.1 then null else round((pg_temp.rnd('gpa:' || i) * 4)::numeric, 2) end,
              timestamptz '2014-08-01 00:00:00+00' + floor(pg_temp.rnd('created:' || i) * 3.5e14)::bigint * interval '1 microsecond'
         from generate_series(1, ${students}) i, lateral (select (floor(pg_temp.rnd('grade:' || i) * 14) - 1)::smallint as grade) g`,
    // Every student is enrolled; one in five also has an earlier, ended enrollment at another school.
    `insert into enrollments (id, student_id, school_id, start_date, end_date)
       select i, i, 1 + (i % ${shape.schools}), date '2024-08-20' - floor(pg_temp.rnd('start:' || i) * 30)::int, null
         from generate_series(1, ${students}) i
       union all
       select ${students} + j, j * 5, 1 + ((j * 5 + 1) % ${shape.schools}), date '2021-08-23', date '2024-06-14' - floor(pg_temp.rnd('end:' || j) * 60)::int
         from generate_series(1, ${Math.floor(students / 5)}) j`,
    `insert into staff (id, school_id, first_name, last_name, email, role)
       select i, 1 + (i % ${shape.schools}), f.name, l.name,
              lower(regexp_replace(normalize(f.name || '.' || l.name, NFD), '[^A-Za-z.]', '', 'g')) || '.' || i || '@' || p.slug || '.example.org',
              case when i % 10 = 0 then 'counselor' when i % 20 = 5 then 'administrator' else 'teacher' end
         from generate_series(1, ${shape.staff}) i, district_profile p,
              lateral (select ${pick('first_names', `'staff-first:' || i`)} as name) f, lateral (select ${pick('last_names', `'staff-last:' || i`)} as name) l`,
    `insert into sections (id, school_id, teacher_id, name, subject)
       select row_number() over (order by t.id, k), t.school_id, t.id, s.subject || ' ' || t.id || '-' || k, s.subject
         from staff t, generate_series(1, 4) k, lateral (select ${pick('subjects', `'subject:' || t.id || ':' || k`)} as subject) s
        where t.role = 'teacher'`,
    // Four distinct sections per student: offsets 0, q, 2q, 3q (q = sections / 4) never meet modulo the count.
    `insert into section_rosters (section_id, student_id)
       select 1 + ((i * 7919 + j * (n.sections / 4)) % n.sections), i
         from generate_series(1, ${students}) i, generate_series(0, 3) j, (select count(*)::int as sections from sections) n`,
    ...['schools', 'students', 'enrollments', 'staff', 'sections'].map(
      (table) => `select setval(pg_get_serial_sequence('${table}', 'id'), (select max(id) from ${table}))`,
    ),
    'analyze',
  ];
}

export interface GenerateOptions {
  source: SourceTemplate;
  students: number;
  seed: string;
  /** Drop and recreate district databases that exist; otherwise an existing one is an error. */
  replace: boolean;
}

/** Creates and fills one legacy database per district, one district at a time (callers run several). */
export async function generateLegacyDistrict(options: GenerateOptions, district: LegacyDistrict): Promise<void> {
  const { source, students, seed, replace } = options;
  const database = source.databaseOf(district.slug);
  const admin = await connect(source.maintenanceUrl, 'the legacy server');
  try {
    const { rowCount } = await admin.query('select 1 from pg_database where datname = $1', [database]);
    if (rowCount && !replace) throw new Error(`database ${database} already exists (use --replace to recreate it)`);
    await admin.query(`drop database if exists ${escapeIdentifier(database)} with (force)`);
    await admin.query(`create database ${escapeIdentifier(database)} encoding 'UTF8' template template0`);
  } finally {
    await admin.end();
  }
  const client = await connect(source.urlOf(district.slug), `legacy database ${database}`);
  try {
    await client.query('begin');
    await client.query(LEGACY_DDL);
    await client.query('insert into district_profile (slug, name) values ($1, $2)', [district.slug, district.name]);
    // The seed is a constant of the function body (a parameter cannot reach inside $$ … $$).
    await client.query(
      `create function pg_temp.rnd(key text) returns double precision language sql immutable
         as $$ select ('x' || substr(md5(${escapeLiteral(`${seed}:${district.slug}`)} || ':' || key), 1, 8))::bit(32)::bigint / 4294967296.0 $$`,
    );
    for (const sql of generationSql(students)) {
      if (sql === 'analyze') {
        await client.query('commit');
        await client.query(sql);
      } else {
        await client.query(...bind(sql));
      }
    }
  } finally {
    await client.end();
  }
}

const NAME_LISTS = { first_names: FIRST_NAMES, last_names: LAST_NAMES, subjects: SUBJECTS, school_kinds: SCHOOL_KINDS };

/** Turns `@list` references into numbered parameters, binding only the lists a statement uses. */
function bind(sql: string): [string, string[][]] {
  const used: (keyof typeof NAME_LISTS)[] = [];
  const text = sql.replace(/@(first_names|last_names|subjects|school_kinds)\b/g, (_, name: keyof typeof NAME_LISTS) => {
    if (!used.includes(name)) used.push(name);
    return `$${used.indexOf(name) + 1}`;
  });
  return [text, used.map((name) => NAME_LISTS[name])];
}
