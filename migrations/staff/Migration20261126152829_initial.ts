import { Migration } from '@mikro-orm/migrations';
import { createTenantFunction } from '../../tenancy/tenant-function.ts';

export class Migration20261126152829_initial extends Migration {

  override name = 'Migration20261126152829_initial';

  override up(): void | Promise<void> {
    for (const sql of createTenantFunction) this.addSql(sql);

    this.addSql(`create table "section" ("tenant_id" uuid not null, "id" uuid not null default gen_random_uuid(), "name" varchar(200) not null, "subject" varchar(100) not null, "teacher_id" uuid not null, "school_id" uuid not null, primary key ("tenant_id", "id"));`);
    this.addSql(`create index "section_tenant_id_teacher_id_index" on "section" ("tenant_id", "teacher_id");`);

    this.addSql(`create table "section_student" ("tenant_id" uuid not null, "section_id" uuid not null, "student_id" uuid not null, primary key ("tenant_id", "section_id", "student_id"));`);

    this.addSql(`create table "staff_member" ("tenant_id" uuid not null, "id" uuid not null default gen_random_uuid(), "first_name" varchar(100) not null, "last_name" varchar(100) not null, "email" varchar(200) not null, "role" text not null, "school_id" uuid not null, primary key ("tenant_id", "id"));`);
    this.addSql(`create index "staff_member_tenant_id_last_name_first_name_id_index" on "staff_member" ("tenant_id", "last_name", "first_name", "id");`);

    this.addSql(`alter table "section" enable row level security;`);
    this.addSql(`alter table "section" force row level security;`);
    this.addSql(`create policy "tenant_isolation" on "section" using (tenant_id = (select app.current_tenant_id())) with check (tenant_id = (select app.current_tenant_id()));`);

    this.addSql(`alter table "section_student" enable row level security;`);
    this.addSql(`alter table "section_student" force row level security;`);
    this.addSql(`create policy "tenant_isolation" on "section_student" using (tenant_id = (select app.current_tenant_id())) with check (tenant_id = (select app.current_tenant_id()));`);

    this.addSql(`alter table "staff_member" add constraint "staff_member_role_check" check ("role" in ('teacher', 'counselor', 'administrator'));`);
    this.addSql(`alter table "staff_member" enable row level security;`);
    this.addSql(`alter table "staff_member" force row level security;`);
    this.addSql(`create policy "tenant_isolation" on "staff_member" using (tenant_id = (select app.current_tenant_id())) with check (tenant_id = (select app.current_tenant_id()));`);

    // Composite, so a row can only point at a row of its own district (FK checks bypass RLS). Deferred to
    // commit: the ORM does not know these links, so it may insert a child before its parent in one flush.
    this.addSql(`alter table "section" add constraint "section_teacher_fk" foreign key ("tenant_id", "teacher_id") references "staff_member" ("tenant_id", "id") deferrable initially deferred;`);
    this.addSql(`alter table "section_student" add constraint "section_student_section_fk" foreign key ("tenant_id", "section_id") references "section" ("tenant_id", "id") on delete cascade deferrable initially deferred;`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "section" cascade;`);
    this.addSql(`drop table if exists "section_student" cascade;`);
    this.addSql(`drop table if exists "staff_member" cascade;`);
  }

}
