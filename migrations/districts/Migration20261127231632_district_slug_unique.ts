import { Migration } from '@mikro-orm/migrations';

export class Migration20261127231632_district_slug_unique extends Migration {

  override name = 'Migration20261127231632_district_slug_unique';

  override up(): void | Promise<void> {
    this.addSql(`alter table "district" add constraint "district_slug_unique" unique ("slug");`);
  }

  override down(): void | Promise<void> {
    this.addSql(`alter table "district" drop constraint "district_slug_unique";`);
  }

}
