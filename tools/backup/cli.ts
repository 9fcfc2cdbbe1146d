/**
 * `npm run backup -- --out <folder>`: a custom-format pg_dump of every service database, as the owner,
 * into `<folder>/<database>.dump`. Exits 1 (leaving no partial file) when any dump fails. Restoring is
 * described in docs/backup-restore.md.
 */
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { runCli, withServiceDatabases } from '../operator-cli.ts';
import { dumpDatabase, unsupportedReason } from './pg-tools.ts';

const { out } = new Command()
  .name('backup')
  .description('Dump every service database (custom format, as the owner) into a folder.')
  .requiredOption('--out <folder>', 'folder for the <database>.dump files')
  .parse()
  .opts<{ out: string }>();

async function main(): Promise<number> {
  return withServiceDatabases(async (databases) => {
    const refusal = await unsupportedReason(databases[0]!.ownerUrl);
    if (refusal) throw new Error(refusal);
    const folder = resolve(out);
    await mkdir(folder, { recursive: true });
    const bar = new SingleBar({ format: 'backup [{bar}] {value}/{total} {database}' }, Presets.shades_classic);
    bar.start(databases.length, 0, { database: '' });
    try {
      for (const db of databases) {
        bar.update({ database: db.database });
        await dumpDatabase(db.ownerUrl, join(folder, `${db.database}.dump`));
        bar.increment();
      }
    } finally {
      bar.stop();
    }
    console.log(`backup: ${databases.length} databases dumped to ${folder}`);
    return 0;
  });
}

await runCli('backup', main, 1);
