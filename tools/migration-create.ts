/**
 * `npm run migration:create -- <service> [name]`: writes a new migration for the service from the
 * difference between its entities and its last snapshot, against a scratch database on the admin server.
 */
import { Command } from 'commander';
import pg from 'pg';
import { readConfig } from '../config/config.ts';
import { initOrm } from '../database/orm.ts';
import { loadSubgraphs } from '../subgraph-server/registry.ts';
import '../config/node-version.ts';

const subgraphs = await loadSubgraphs();

const program = new Command()
  .argument('<service>', `one of ${subgraphs.map((s) => s.name).join(', ')}`)
  .argument('[name]', 'suffix of the migration file name')
  .requiredOption('--database-url <url>', 'admin URL of a PostgreSQL server for a scratch database (env DATABASE_URL)', readConfig().databaseUrl)
  .action(async (service: string, name: string | undefined, options: { databaseUrl: string }) => {
    const definition = subgraphs.find((s) => s.name === service);
    if (!definition) program.error(`unknown service ${service}`);
    const scratch = `migration_scratch_${service}`;
    const admin = new pg.Client({ connectionString: options.databaseUrl });
    await admin.connect();
    await admin.query(`drop database if exists ${scratch}`);
    await admin.query(`create database ${scratch}`);
    const url = new URL(options.databaseUrl);
    url.pathname = `/${scratch}`;
    const orm = await initOrm({ service, entities: definition!.entities, clientUrl: url.toString() });
    try {
      const result = await orm.migrator.create(undefined, false, false, name);
      console.log(result.fileName ? `wrote ${result.fileName}` : 'no changes');
    } finally {
      await orm.close();
      await admin.query(`drop database if exists ${scratch}`);
      await admin.end();
    }
  });
await program.parseAsync();
