/**
 * `npm run migration:create -- <service> [name]`: writes a new migration for a registered service from the
 * difference between its entities (with their declared composite foreign keys) and its last snapshot, and
 * updates the snapshot; prints `wrote <file>` or `no changes`. With a snapshot MikroORM diffs offline and no
 * database is touched. A service without migrations yet gets its whole initial schema, diffed against an
 * empty scratch database on the configured server, reached the way `npm run migrate` reaches it
 * (DATABASE_URL, or the embedded PostgreSQL in DATA_DIR, attached to when running), and dropped afterwards.
 */
import '../config/node-version.ts';
import { existsSync } from 'node:fs';
import { Command } from 'commander';
import pg, { escapeIdentifier } from 'pg';
import { pino } from 'pino';
import { readConfig } from '../config/config.ts';
import { readRegistry, snapshotPath } from '../config/registry.ts';
import { openDatabaseServer } from '../database/database.ts';
import { initOrm } from '../database/orm.ts';
import { loadSubgraphByName } from '../subgraph-server/registry.ts';
import { withTenantForeignKeys } from '../tenancy/tenant-table.ts';
import { runCli } from './operator-cli.ts';

/** Never connected to: with a snapshot, MikroORM's migration generator works from the snapshot alone. */
const OFFLINE_URL = 'postgresql://offline.invalid/unused';

async function generate(service: string, clientUrl: string, name?: string): Promise<string | undefined> {
  const definition = await loadSubgraphByName(service);
  const orm = await initOrm({
    service,
    entities: withTenantForeignKeys(definition.entities, definition.foreignKeys ?? []),
    clientUrl,
    poolSize: 1,
  });
  try {
    const result = await orm.migrator.create(undefined, false, false, name);
    return result.fileName || undefined;
  } finally {
    await orm.close();
  }
}

/** Creates the migration (or none); returns the file name written, or undefined when nothing changed. */
export async function createMigration(service: string, name?: string): Promise<string | undefined> {
  const entry = readRegistry().find((s) => s.name === service);
  if (!entry)
    throw new Error(
      `unknown subgraph "${service}": registered are ${readRegistry()
        .map((s) => s.name)
        .join(', ')}`,
    );
  if (existsSync(snapshotPath(entry))) return generate(service, OFFLINE_URL, name);
  const config = readConfig();
  const server = await openDatabaseServer({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    embeddedPort: config.embeddedPort,
    logger: pino({ level: 'warn' }),
    attach: true,
  });
  const scratch = `${config.prefix}_migration_scratch_${service}`;
  const admin = new pg.Client({ connectionString: server.adminUrl });
  try {
    await admin.connect();
    await admin.query(`drop database if exists ${escapeIdentifier(scratch)} with (force)`);
    await admin.query(`create database ${escapeIdentifier(scratch)}`);
    const url = new URL(server.adminUrl);
    url.pathname = `/${scratch}`;
    return await generate(service, url.toString(), name);
  } finally {
    await admin.query(`drop database if exists ${escapeIdentifier(scratch)} with (force)`).catch(() => {});
    await admin.end().catch(() => {});
    await server.stop();
  }
}

if (import.meta.main) {
  const program = new Command('migration:create')
    .argument(
      '<service>',
      `a registered service: ${readRegistry()
        .map((s) => s.name)
        .join(', ')}`,
    )
    .argument('[name]', 'suffix of the migration file name')
    .parse();
  const [service, name] = program.processedArgs as [string, string | undefined];
  if (name !== undefined && !/^[a-z0-9_]+$/i.test(name)) program.error('name may only hold letters, digits and _');
  await runCli('migration:create', async () => {
    const file = await createMigration(service, name);
    console.log(file ? `wrote ${file}` : 'no changes');
    return 0;
  });
}
