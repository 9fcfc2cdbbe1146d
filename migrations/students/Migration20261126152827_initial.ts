import { Migration } from '@mikro-orm/migrations';
import { createTenantFunction } from '../../tenancy/tenant-function.ts';

export class Migration20261126152827_initial extends Migration {

  override name = 'Migration20261126152827_initial';

  override up(): void | Promise<void> {
    for (const sql of createTenantFunction) this.addSql(sql);

    this.addSql(`create table "enrollment" ("tenant_id" uuid not null, "id" uuid not null default gen_random_uuid(), "student_id" uuid not null, "school_id" uuid not null, "start_date" date not null, "end_date" date null, primary key ("tenant_id", "id"));`);
    this.addSql(`create index "enrollment_tenant_id_student_id_index" on "enrollment" ("tenant_id", "student_id");`);

    this.addSql(`create table "student" ("tenant_id" uuid not null, "id" uuid not null default gen_random_uuid(), "first_name" varchar(100) not null, "last_name" varchar(100) not null, "grade" smallint not null, "date_of_birth" date null, "school_id" uuid not null, "created_at" timestamptz not null default now(), primary key ("tenant_id", "id"));`);
    this.addSql(`create index "student_tenant_id_last_name_first_name_id_index" on "student" ("tenant_id", "last_name", "first_name", "id");`);
    this.addSql(`create index "student_tenant_id_grade_last_name_first_name_id_index" on "student" ("tenant_id", "grade", "last_name", "first_name", "id");`);
    this.addSql(`create index "student_tenant_id_school_id_index" on "student" ("tenant_id", "school_id");`);

    this.addSql(`alter table "enrollment" enable row level security;`);
    this.addSql(`alter table "enrollment" force row level security;`);
    this.addSql(`create policy "tenant_isolation" on "enrollment" using (tenant_id = (select app.current_tenant_id())) with check (tenant_id = (select app.current_tenant_id()));`);

    this.addSql(`alter table "student" enable row level security;`);
    this.addSql(`alter table "student" force row level security;`);
    this.addSql(`create policy "tenant_isolation" on "student" using (tenant_id = (select app.current_tenant_id())) with check (tenant_id = (select app.current_tenant_id()));`);

    // Composite, so a row can only point at a row of its own district (FK checks bypass RLS). Deferred to
    // commit: the ORM does not know these links, so it may insert a child before its parent in one flush.
    this.addSql(`alter table "enrollment" add constraint "enrollment_student_fk" foreign key ("tenant_id", "student_id") references "student" ("tenant_id", "id") on delete cascade deferrable initially deferred;`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "enrollment" cascade;`);
    this.addSql(`drop table if exists "student" cascade;`);
  }

}
