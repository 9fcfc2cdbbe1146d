/** Runs every policy rule against one database and labels the findings with the rule and database. */
import type pg from 'pg';
import type { Finding, PolicyRule } from './catalog.ts';
import { rules as allRules } from './rules/index.ts';

export interface LintOptions {
  appRoles: string[];
  rules?: PolicyRule[];
}

export async function lintDatabase(client: pg.ClientBase, { appRoles, rules = allRules }: LintOptions): Promise<Finding[]> {
  const { rows } = await client.query<{ database: string }>('select current_database() as database');
  const database = rows[0]!.database;
  const findings: Finding[] = [];
  // One at a time: a pg client runs one query at a time anyway, and the order stays the rules' order.
  for (const rule of rules) {
    for (const raw of await rule.check({ client, appRoles })) findings.push({ rule: rule.name, database, ...raw });
  }
  return findings;
}

/** How many tenant tables a database has: a linter that found none has checked nothing. */
export async function countTenantTables(client: pg.ClientBase): Promise<number> {
  const { rows } = await client.query<{ count: number }>(
    `select count(*)::int as count from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
      where a.attname = 'tenant_id' and a.attnum > 0 and not a.attisdropped and c.relkind in ('r', 'p')
        and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_toast%'`,
  );
  return rows[0]!.count;
}

/** A plain-text table, columns padded to their widest cell. */
export function formatTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((header, i) => Math.max(header.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export const findingsTable = (findings: Finding[]) =>
  formatTable(
    ['database', 'rule', 'object', 'finding'],
    findings.map((f) => [f.database, f.rule, f.object, f.detail]),
  );
