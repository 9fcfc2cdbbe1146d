/**
 * `npm run check:policies`: lints every service database (or the databases given with --url) for the
 * row-level security mistakes listed in rules/. Prints a table (or JSON with --json); exits 1 on any
 * finding, 2 when it could not check. Connects as the owner, the same way `npm run migrate` does.
 */
import { writeFile } from 'node:fs/promises';
import { Command } from 'commander';
import pg from 'pg';
import { runCli, withServiceDatabases } from '../operator-cli.ts';
import type { Finding } from './catalog.ts';
import { countTenantTables, findingsTable, lintDatabase } from './lint.ts';
import { rules } from './rules/index.ts';

interface Options {
  json?: boolean;
  jsonFile?: string;
  url?: string[];
  appRole: string[];
  listRules?: boolean;
}

const program = new Command()
  .name('check:policies')
  .description('Lint the row-level security of every service database; exit 1 on any finding.')
  .option('--json', 'print the report as JSON instead of a table')
  .option('--json-file <path>', 'also write the JSON report to a file (for CI artifacts)')
  .option('--url <url...>', 'lint these databases instead of the platform services (e.g. restored copies)')
  .option('--app-role <role...>', 'application roles of the databases given with --url', [])
  .option('--list-rules', 'print every rule with its rationale and exit')
  .parse();
const options = program.opts<Options>();

interface Target {
  label: string;
  url: string;
  appRoles: string[];
}

async function lintTargets(targets: Target[]): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (const target of targets) {
    const client = new pg.Client({ connectionString: target.url });
    await client.connect().catch(() => {
      // The URL may carry a password: name the database, never the URL.
      throw new Error(`could not connect to ${target.label}`);
    });
    try {
      if ((await countTenantTables(client)) === 0) throw new Error(`${target.label} has no tenant tables: run \`npm run migrate\` first`);
      findings.push(...(await lintDatabase(client, { appRoles: target.appRoles })));
    } finally {
      await client.end();
    }
  }
  return findings;
}

async function main(): Promise<number> {
  if (options.listRules) {
    for (const rule of rules) console.log(`${rule.name}: ${rule.rationale}`);
    return 0;
  }
  const lint = async (targets: Target[]) => ({ targets, findings: await lintTargets(targets) });
  const { targets, findings } = options.url
    ? await lint(options.url.map((url) => ({ label: new URL(url).pathname.slice(1) || 'database', url, appRoles: options.appRole })))
    : await withServiceDatabases((databases) =>
        lint(databases.map((db) => ({ label: db.database, url: db.ownerUrl, appRoles: [db.appRole] }))),
      );
  const report = { databases: targets.map((t) => t.label), rules: rules.length, findings };
  if (options.jsonFile) await writeFile(options.jsonFile, `${JSON.stringify(report, null, 2)}\n`);
  if (options.json) console.log(JSON.stringify(report, null, 2));
  else if (findings.length)
    console.log(`${findingsTable(findings)}\n\n${findings.length} finding(s) in ${targets.length} database(s), ${rules.length} rules`);
  else console.log(`policies: ${rules.length} rules, ${targets.length} databases (${report.databases.join(', ')}), 0 findings`);
  return findings.length ? 1 : 0;
}

await runCli('check:policies', main);
