/**
 * The legacy per-district database: single-tenant, serial integer ids, one schema holding what now belongs
 * to three services. The fixture generator creates it from LEGACY_DDL; consolidation checks a source against
 * LEGACY_TABLES (column names and `format_type` types) before it reads anything.
 */

export interface LegacyTable {
  name: string;
  /** Column name → type exactly as PostgreSQL's `format_type()` prints it. */
  columns: Record<string, string>;
}

export const LEGACY_TABLES: LegacyTable[] = [
  { name: 'district_profile', columns: { slug: 'text', name: 'text' } },
  { name: 'schools', columns: { id: 'integer', name: 'character varying(200)', created_at: 'timestamp with time zone' } },
  {
    name: 'students',
    columns: {
      id: 'integer',
      school_id: 'integer',
      first_name: 'character varying(100)',
      last_name: 'character varying(100)',
      grade: 'smallint',
      date_of_birth: 'date',
      gpa: 'numeric(3,2)',
      created_at: 'timestamp with time zone',
    },
  },
  {
    name: 'enrollments',
    columns: { id: 'integer', student_id: 'integer', school_id: 'integer', start_date: 'date', end_date: 'date' },
  },
  {
    name: 'staff',
    columns: {
      id: 'integer',
      school_id: 'integer',
      first_name: 'character varying(100)',
      last_name: 'character varying(100)',
      email: 'character varying(200)',
      role: 'text',
    },
  },
  {
    name: 'sections',
    columns: {
      id: 'integer',
      school_id: 'integer',
      teacher_id: 'integer',
      name: 'character varying(200)',
      subject: 'character varying(100)',
    },
  },
  { name: 'section_rosters', columns: { section_id: 'integer', student_id: 'integer' } },
];

/** Foreign keys as the legacy systems had them: plain integer references inside one district. */
export const LEGACY_DDL = `
create table district_profile (slug text primary key, name text not null);
create table schools (
  id serial primary key,
  name varchar(200) not null,
  created_at timestamptz not null default now()
);
create table students (
  id serial primary key,
  school_id integer not null references schools,
  first_name varchar(100) not null,
  last_name varchar(100) not null,
  grade smallint not null check (grade between -1 and 12),
  date_of_birth date,
  gpa numeric(3,2),
  created_at timestamptz not null default now()
);
create table enrollments (
  id serial primary key,
  student_id integer not null references students,
  school_id integer not null references schools,
  start_date date not null,
  end_date date
);
create table staff (
  id serial primary key,
  school_id integer not null references schools,
  first_name varchar(100) not null,
  last_name varchar(100) not null,
  email varchar(200) not null,
  role text not null check (role in ('teacher', 'counselor', 'administrator'))
);
create table sections (
  id serial primary key,
  school_id integer not null references schools,
  teacher_id integer not null references staff,
  name varchar(200) not null,
  subject varchar(100) not null
);
create table section_rosters (
  section_id integer not null references sections,
  student_id integer not null references students,
  primary key (section_id, student_id)
);
`;
