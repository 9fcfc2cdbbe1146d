import { recordDistrictEventAsOwner } from './audit.ts';
import type { Command } from 'commander';
import { withServiceDatabases } from '../operator-cli.ts';
import { Refused } from './export-catalog.ts';
import { exportDistrict, verifyExport } from './export.ts';
import { offboardDistrict } from './offboard.ts';
import { restoreDistrict } from './restore.ts';

/** Prints a result: JSON on stdout with --json, else a line per fact. */
const report = (json: boolean, value: unknown, lines: string[]) => console.log(json ? JSON.stringify(value) : lines.join('\n'));

/** Runs a command's work; a refusal exits 2 with its one line, any other error 1 (docs/district-lifecycle.md). */
async function run(work: () => Promise<number>): Promise<void> {
  try {
    process.exitCode = await work();
  } catch (error) {
    console.error(`district: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = error instanceof Refused ? 2 : 1;
  }
}

/** export, offboard, restore. */
export function registerDataCommands(program: Command): void {
  program
    .command('export')
    .description("Write every row of a district from every service (CSV per table) and a manifest; or check an export's files")
    .argument('[district]', 'district UUID or slug')
    .option('--out <dir>', 'an empty or new directory to write the export to')
    .option('--verify <dir>', 're-read an export and check its files against its manifest')
    .option('--json', 'print the result as JSON')
    .option('--no-progress', 'no progress bars on stderr')
    .action((district: string | undefined, options: { out?: string; verify?: string; json?: boolean; progress: boolean }) =>
      run(async () => {
        const json = Boolean(options.json);
        if (options.verify) {
          const { manifest, problems } = await verifyExport(options.verify);
          report(json, { district: manifest.district, tables: manifest.tables.length, problems }, [
            ...problems.map((p) => `${p.table}: ${p.problem}`),
            problems.length
              ? `export of ${manifest.district.slug} does not match its manifest`
              : `export of ${manifest.district.slug}: ${manifest.tables.length} files match the manifest`,
          ]);
          return problems.length ? 1 : 0;
        }
        if (!district || !options.out) throw new Refused('export needs <district> and --out <dir> (or --verify <dir>)');
        const { out } = options;
        const summary = await withServiceDatabases(async (databases) => {
          const done = await exportDistrict(databases, district, out, { progress: options.progress && !json && process.stderr.isTTY });
          await recordDistrictEventAsOwner(databases, done.manifest.district.tenantId, 'export', { out, rows: done.rows });
          return done;
        });
        const rate = Math.round(summary.rows / Math.max(summary.seconds, 0.001));
        report(json, { district: summary.manifest.district, out, rows: summary.rows, seconds: summary.seconds, rowsPerSecond: rate }, [
          ...summary.manifest.tables.map((t) => `${t.service}.${t.table}: ${t.rows} rows`),
          `exported ${summary.manifest.district.slug}: ${summary.rows} rows in ${summary.seconds.toFixed(1)} s (${rate} rows/s) to ${out}`,
        ]);
        return 0;
      }),
    );

  program
    .command('offboard')
    .description("Delete a suspended district's rows from every service, prove it, and leave a tombstone")
    .argument('<district>', 'district UUID or slug (after a kill, rerun with the same argument)')
    .option('--export <dir>', 'an export of this district (checked against its manifest first)')
    .option('--no-export', 'offboard without an export (said explicitly)')
    .option('--json', 'print the result as JSON')
    .option('--no-progress', 'no progress bars on stderr')
    .action((district: string, options: { export?: string | false; json?: boolean; progress: boolean }) =>
      run(async () => {
        const json = Boolean(options.json);
        const exportDir = typeof options.export === 'string' ? options.export : undefined;
        const summary = await withServiceDatabases(async (databases) => {
          const done = await offboardDistrict(databases, district, {
            exportDir,
            noExport: options.export === false,
            progress: options.progress && !json && process.stderr.isTTY,
          });
          await recordDistrictEventAsOwner(databases, done.district.tenantId, 'offboard', {
            export: exportDir ?? null,
            deletedRows: done.deletedRows,
          });
          return done;
        });
        report(json, summary, [
          `offboarded ${summary.district.slug} (${summary.district.tenantId}): ${summary.deletedRows} rows deleted; 0 rows left in ${summary.tables} tables; ${summary.otherDistricts} other districts unchanged; ${summary.seconds.toFixed(1)} s`,
        ]);
        return 0;
      }),
    );

  program
    .command('restore')
    .description("Load a district's export into the live databases without touching any other district")
    .argument('<district>', 'district UUID or slug (as in the export)')
    .requiredOption('--from <dir>', 'the export directory')
    .option('--replace', "delete the district's current rows first")
    .option('--json', 'print the result as JSON')
    .option('--no-progress', 'no progress bars on stderr')
    .action((district: string, options: { from: string; replace?: boolean; json?: boolean; progress: boolean }) =>
      run(async () => {
        const json = Boolean(options.json);
        const summary = await withServiceDatabases(async (databases) => {
          const done = await restoreDistrict(databases, district, options.from, {
            replace: Boolean(options.replace),
            progress: options.progress && !json && process.stderr.isTTY,
          });
          await recordDistrictEventAsOwner(databases, done.manifest.district.tenantId, 'restore', {
            from: options.from,
            rows: done.rows,
            replacedRows: done.replacedRows,
          });
          return done;
        });
        const rate = Math.round(summary.rows / Math.max(summary.seconds, 0.001));
        report(
          json,
          {
            district: summary.manifest.district,
            rows: summary.rows,
            replacedRows: summary.replacedRows,
            seconds: summary.seconds,
            rowsPerSecond: rate,
          },
          [
            `restored ${summary.manifest.district.slug}: ${summary.rows} rows (${summary.replacedRows} replaced) in ${summary.seconds.toFixed(1)} s (${rate} rows/s); counts and checksums equal the manifest, other districts unchanged`,
          ],
        );
        return 0;
      }),
    );
}
