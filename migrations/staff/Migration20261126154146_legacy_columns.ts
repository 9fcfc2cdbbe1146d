import { Migration } from '@mikro-orm/migrations';

export class Migration20261126154146_legacy_columns extends Migration {
  override name = 'Migration20261126154146_legacy_columns';

  override up(): void | Promise<void> {
    // Generated, then reviewed: the composite foreign keys live only in the initial migration (the entities do
    // not declare them), so the generator's drop/re-add of them was removed. RLS and policies are untouched.
    this.addSql(`alter table "section" add "legacy_id" int null;`);

    this.addSql(`alter table "staff_member" add "legacy_id" int null;`);
  }

  override down(): void | Promise<void> {
    this.addSql(`alter table "section" drop column "legacy_id";`);

    this.addSql(`alter table "staff_member" drop column "legacy_id";`);
  }

}
