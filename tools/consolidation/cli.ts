/**
 * `npm run consolidate -- --source 'postgres://…/district_{slug}' --target 'postgres://k12_owner@…/k12_{service}' --districts all --jobs 4`
 * `npm run reconcile -- --source … --target … --districts a,b [--json] [--report report.json]`
 * Progress goes to stderr; the JSON summary (consolidate) or the table (reconcile) to stdout.
 * Exit codes: 0 success / everything matches, 1 differences found (reconcile), 2 refused or failed.
 */
import '../../config/node-version.ts';
import { writeFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { readConfig } from '../../config/config.ts';
import { SourceTemplate } from '../legacy/source-url.ts';
import { barsProgress } from './progress.ts';

// The table mapping finds its services in the registry when loaded: a mapped table that no registered
// service holds stops the command here, in one line, before anything connects.
const [{ districtList, positiveInt, targetUrls }, { consolidate, planConsolidation, resolveSlugs }, { reconcileDistricts, renderReport }] =
  await Promise.all([import('./cli-options.ts'), import('./consolidate.ts'), import('./reconcile.ts')]).catch((error: Error) => {
    console.error(`consolidation: ${error.message}`);
    process.exit(2);
  });

interface CommonOptions {
  source?: string;
  target?: string;
  districts: string[] | 'all';
  jobs: number;
}

const config = readConfig();

const withCommonOptions = (command: Command) =>
  command
    .option(
      '--source <url>',
      'URL template of the legacy district databases, containing {slug} (env LEGACY_SOURCE_URL)',
      config.tools.legacySourceUrl,
    )
    .option(
      '--target <url>',
      'URL template of the service databases as the owner role, containing {service} (env CONSOLIDATION_TARGET_URL)',
      config.tools.consolidationTargetUrl,
    )
    .option('--districts <all|a,b>', '"all" or a comma-separated list of slugs', districtList, 'all' as const)
    .option('--jobs <n>', 'districts processed at once', positiveInt, 2);

function endpoints(options: CommonOptions) {
  if (!options.source) throw new Error('--source (or LEGACY_SOURCE_URL) is required');
  if (!options.target) throw new Error('--target (or CONSOLIDATION_TARGET_URL) is required');
  return { source: new SourceTemplate(options.source), targets: targetUrls(options.target) };
}

const program = new Command('consolidation').showHelpAfterError();

withCommonOptions(
  program.command('consolidate').description('copy legacy districts into the service databases, reconcile them, activate them'),
)
  .option('--dry-run', 'check everything and print the plan (districts, tables, rows) without writing', false)
  .option('--no-progress', 'no progress bars')
  .option(
    '--status-ttl-ms <ms>',
    'how long the gateway may serve a cached district status (env DISTRICT_STATUS_TTL_MS)',
    (v) => Number(v),
    config.districtStatusTtlMs,
  )
  .addOption(new Option('--abort-after-rows <n>', 'test hook: fail the running COPY after n rows').argParser(positiveInt).hideHelp())
  .addOption(new Option('--stall-after-rows <n>', 'test hook: hang in the running COPY after n rows').argParser(positiveInt).hideHelp())
  .action(
    async (
      options: CommonOptions & {
        dryRun: boolean;
        progress: boolean;
        statusTtlMs: number;
        abortAfterRows?: number;
        stallAfterRows?: number;
      },
    ) => {
      const { source, targets } = endpoints(options);
      if (options.dryRun) {
        const plans = await planConsolidation({ source, targets, districts: options.districts, jobs: options.jobs });
        for (const plan of plans) {
          console.log(`${plan.slug} (${plan.database} → tenant ${plan.tenantId}): ${plan.state}`);
          for (const [table, rows] of Object.entries(plan.rows))
            console.log(
              `  ${table.padEnd(24)} ${String(rows).padStart(10)} rows${plan.finished.includes(table) ? '  (done, skipped)' : ''}`,
            );
        }
        const total = plans.reduce((sum, p) => sum + Object.values(p.rows).reduce((a, b) => a + b, 0), 0);
        console.log(`${plans.length} districts, ${total} rows, nothing written (dry run)`);
        return;
      }
      const summary = await consolidate({
        source,
        targets,
        districts: options.districts,
        jobs: options.jobs,
        statusTtlMs: options.statusTtlMs,
        progress: options.progress && process.stderr.isTTY ? barsProgress : undefined,
        abortAfterRows: options.abortAfterRows,
        stallAfterRows: options.stallAfterRows,
      });
      console.log(JSON.stringify(summary, null, 2));
    },
  );

withCommonOptions(
  program.command('reconcile').description('compare legacy districts with the service databases; exit 0 only when everything matches'),
)
  .option('--json', 'print the JSON report instead of the table', false)
  .option('--report <file>', 'also write the JSON report to this file')
  .action(async (options: CommonOptions & { json: boolean; report?: string }) => {
    const { source, targets } = endpoints(options);
    const slugs = await resolveSlugs(source, options.districts);
    const report = await reconcileDistricts({ source, targets, slugs, jobs: options.jobs });
    const json = JSON.stringify(report, null, 2);
    if (options.report) await writeFile(options.report, json);
    console.log(options.json ? json : renderReport(report));
    process.exitCode = report.match ? 0 : 1;
  });

await program.parseAsync().catch((error: Error) => {
  // One line, no stack trace: every expected failure carries its own explanation.
  console.error(`${program.args[0] ?? 'consolidation'}: ${error.message}`);
  process.exitCode = 2;
});
