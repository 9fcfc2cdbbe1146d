/**
 * `npm run explain -- --tenant <district id> --table <table> --id <row id> [--json]`: why a district can or
 * cannot see one row. Runs as the owner against the service databases; it is an operator tool, not part
 * of the graph.
 */
import { Command } from 'commander';
import { runCli, withServiceDatabases } from '../operator-cli.ts';
import { explainRow, formatExplanation } from './explain.ts';

const options = new Command()
  .name('explain')
  .description("Explain why a district can or cannot see a row: ownership, RLS flags, and each policy's verdict for that district.")
  .requiredOption('--tenant <id>', 'the district (tenant) UUID asking')
  .requiredOption('--table <table>', 'tenant table name, e.g. student or public.student')
  .requiredOption('--id <id>', "the row's id (for the district table: the district id)")
  .option('--json', 'print the explanation as JSON')
  .parse()
  .opts<{ tenant: string; table: string; id: string; json?: boolean }>();

await runCli('explain', async () => {
  const explanation = await withServiceDatabases((databases) =>
    explainRow(databases, { tenantId: options.tenant, table: options.table, id: options.id }),
  );
  console.log(options.json ? JSON.stringify(explanation, null, 2) : formatExplanation(explanation));
  return 0;
});
