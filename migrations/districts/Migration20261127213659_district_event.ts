import { Migration } from '@mikro-orm/migrations';
import { createTenantFunction } from '../../tenancy/tenant-function.ts';

export class Migration20261127213659_district_event extends Migration {

  override name = 'Migration20261127213659_district_event';

  override up(): void | Promise<void> {
    for (const sql of createTenantFunction) this.addSql(sql);

    this.addSql(`create table "district_event" ("tenant_id" uuid not null, "id" uuid not null default gen_random_uuid(), "at" timestamptz not null default now(), "action" varchar(40) not null, "actor" varchar(200) not null, "details" jsonb not null default '{}', primary key ("tenant_id", "id"));`);

    this.addSql(`alter table "district_event" enable row level security;`);
    this.addSql(`alter table "district_event" force row level security;`);
    this.addSql(`create policy "tenant_isolation" on "district_event" using (tenant_id = (select app.current_tenant_id())) with check (tenant_id = (select app.current_tenant_id()));`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "district_event" cascade;`);
  }

}
