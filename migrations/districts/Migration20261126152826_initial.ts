import { Migration } from '@mikro-orm/migrations';
import { createTenantFunction } from '../../tenancy/tenant-function.ts';

export class Migration20261126152826_initial extends Migration {

  override name = 'Migration20261126152826_initial';

  override up(): void | Promise<void> {
    for (const sql of createTenantFunction) this.addSql(sql);

    this.addSql(`create table "district" ("tenant_id" uuid not null, "name" varchar(200) not null, "slug" varchar(100) not null, "status" text not null default 'active', "created_at" timestamptz not null default now(), primary key ("tenant_id"));`);

    this.addSql(`create table "school" ("tenant_id" uuid not null, "id" uuid not null default gen_random_uuid(), "name" varchar(200) not null, "created_at" timestamptz not null default now(), primary key ("tenant_id", "id"));`);

    this.addSql(`alter table "district" add constraint "district_status_check" check ("status" in ('active', 'suspended', 'migrating'));`);
    this.addSql(`alter table "district" enable row level security;`);
    this.addSql(`alter table "district" force row level security;`);
    this.addSql(`create policy "tenant_isolation" on "district" using (tenant_id = (select app.current_tenant_id())) with check (tenant_id = (select app.current_tenant_id()));`);

    this.addSql(`alter table "school" enable row level security;`);
    this.addSql(`alter table "school" force row level security;`);
    this.addSql(`create policy "tenant_isolation" on "school" using (tenant_id = (select app.current_tenant_id())) with check (tenant_id = (select app.current_tenant_id()));`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "district" cascade;`);
    this.addSql(`drop table if exists "school" cascade;`);
  }

}
