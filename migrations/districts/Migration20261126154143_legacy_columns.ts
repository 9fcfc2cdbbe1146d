import { Migration } from '@mikro-orm/migrations';

export class Migration20261126154143_legacy_columns extends Migration {
  override name = 'Migration20261126154143_legacy_columns';

  override up(): void | Promise<void> {
    // Generated, then reviewed: one nullable column; RLS and policies are untouched.
    this.addSql(`alter table "school" add "legacy_id" int null;`);
  }

  override down(): void | Promise<void> {
    this.addSql(`alter table "school" drop column "legacy_id";`);
  }

}
