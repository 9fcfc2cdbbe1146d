/**
 * MikroORM's TypeScript migration generator, plus one rule: a migration that creates a tenant policy
 * (which calls `app.current_tenant_id()`) first runs the tenant function of tenancy/tenant-function.ts,
 * so a service's first migration comes out of `migration:create` complete, with no hand edit.
 * The function's statements are idempotent, so a later migration that adds a tenant table repeats them harmlessly.
 */
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TSMigrationGenerator } from '@mikro-orm/migrations';

const TENANT_FUNCTION_MODULE = fileURLToPath(new URL('../tenancy/tenant-function.ts', import.meta.url));
const USES_TENANT_FUNCTION = /^create policy .*app\.current_tenant_id\(\)/i;

export class TenantMigrationGenerator extends TSMigrationGenerator {
  override generateMigrationFile(className: string, diff: { up: string[]; down: string[] }): string {
    const code = super.generateMigrationFile(className, diff);
    if (!diff.up.some((sql) => USES_TENANT_FUNCTION.test(sql))) return code;
    const folder = (this.options.pathTs ?? this.options.path)!;
    let importPath = relative(folder, TENANT_FUNCTION_MODULE).split('\\').join('/');
    if (!importPath.startsWith('.')) importPath = `./${importPath}`;
    return code
      .replace(
        `import { Migration } from '@mikro-orm/migrations';\n`,
        `import { Migration } from '@mikro-orm/migrations';\nimport { createTenantFunction } from '${importPath}';\n`,
      )
      .replace(
        '  override up(): void | Promise<void> {\n',
        '  override up(): void | Promise<void> {\n    for (const sql of createTenantFunction) this.addSql(sql);\n\n',
      );
  }
}
