/**
 * A scratch database on the test server with one clean, correctly isolated schema (the platform's
 * conventions in miniature). Each planted flaw runs inside a transaction that is rolled back, so every
 * test starts from the same clean schema.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { APP_ROLE_SETTINGS } from '../../database/app-role-settings.ts';
import { createTenantFunction } from '../../tenancy/tenant-function.ts';

const POLICY = `using (tenant_id = (select app.current_tenant_id())) with check (tenant_id = (select app.current_tenant_id()))`;

export const scratchSchema = (appRole: string) => [
  ...createTenantFunction,
  `create table public.student (tenant_id uuid not null, id uuid not null default gen_random_uuid(), name text not null, primary key (tenant_id, id))`,
  `create table public.enrollment (tenant_id uuid not null, id uuid not null default gen_random_uuid(), student_id uuid not null,
     primary key (tenant_id, id),
     constraint enrollment_student_fk foreign key (tenant_id, student_id) references public.student (tenant_id, id))`,
  `create index enrollment_tenant_id_student_id_index on public.enrollment (tenant_id, student_id)`,
  // Not a tenant table: the linter must leave it alone.
  `create table public.settings (key text primary key, value text)`,
  ...['student', 'enrollment'].flatMap((table) => [
    `alter table public.${table} enable row level security`,
    `alter table public.${table} force row level security`,
    `create policy tenant_isolation on public.${table} ${POLICY}`,
  ]),
  `create role ${appRole} login nosuperuser nobypassrls noinherit`,
  `grant usage on schema public, app to ${appRole}`,
  `grant select, insert on public.student, public.enrollment to ${appRole}`,
  `grant update (name) on public.student to ${appRole}`,
  `grant update (student_id) on public.enrollment to ${appRole}`,
  // Constant names and values of our own; ALTER ROLE cannot take parameters.
  ...Object.entries(APP_ROLE_SETTINGS).map(([name, value]) => `alter role ${appRole} set ${name} = '${value}'`),
];

export interface ScratchDatabase {
  client: pg.Client;
  appRole: string;
  url: string;
  drop(): Promise<void>;
}

export async function createScratchDatabase(adminUrl: string): Promise<ScratchDatabase> {
  const name = `lint_${randomBytes(4).toString('hex')}`;
  const appRole = `${name}_app`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  // Generated names of [a-z0-9_] only; DDL cannot take parameters.
  await admin.query(`create database ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  for (const sql of scratchSchema(appRole)) await client.query(sql);
  return {
    client,
    appRole,
    url: url.toString(),
    async drop() {
      await client.end();
      await admin.query(`drop database if exists ${name} with (force)`);
      await admin.query(`drop role if exists ${appRole}`);
      await admin.end();
    },
  };
}
