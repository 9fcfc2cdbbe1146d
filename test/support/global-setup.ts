/**
 * One PostgreSQL for the whole run: the server named by DATABASE_URL, or a throw-away embedded
 * PostgreSQL 16. Each test file then provisions its own roles and databases under a unique prefix.
 */
import '../../config/node-version.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { TestProject } from 'vitest/node';
import { freePort } from '../../load/bench/platform-process.ts';
import { openDatabaseServer } from '../../database/database.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    adminUrl: string;
  }
}

export default async function setup(project: TestProject) {
  const dataDir = await mkdtemp(join(tmpdir(), 'k12-test-pg-'));
  const server = await openDatabaseServer({
    databaseUrl: process.env.DATABASE_URL,
    dataDir,
    embeddedPort: await freePort(),
    logger: pino({ level: 'warn' }),
  });
  const version = await import('pg').then(async ({ default: pg }) => {
    const client = new pg.Client({ connectionString: server.adminUrl });
    await client.connect();
    const { rows } = await client.query<{ server_version: string }>('show server_version');
    await client.end();
    return rows[0]!.server_version;
  });
  console.log(`tests run against PostgreSQL ${version} (${server.embedded ? 'embedded' : 'DATABASE_URL'})`);
  project.provide('adminUrl', server.adminUrl);
  return async () => {
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  };
}
