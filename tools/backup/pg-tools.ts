/**
 * pg_dump / pg_restore for one service database, as the owner (BYPASSRLS, so every district's rows are
 * dumped and pg_dump's default row_security=off succeeds). A dump is written to `<file>.partial` and renamed
 * only when pg_dump succeeds: a refused dump (e.g. as the application role, which RLS stops) leaves no file.
 */
import { execFile } from 'node:child_process';
import { rename, rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import pg from 'pg';
import { environmentWith } from '../../config/config.ts';

const run = promisify(execFile);

/** The URL without its password (which goes in PGPASSWORD), so it never shows in a process list. */
function connection(url: string): { dbname: string; env: NodeJS.ProcessEnv } {
  const parsed = new URL(url);
  const password = decodeURIComponent(parsed.password);
  parsed.password = '';
  return { dbname: parsed.toString(), env: environmentWith({ PGPASSWORD: password }) };
}

/** The last `error:` line of a tool's stderr, without the URL or password. */
const reason = (stderr: string) =>
  stderr
    .split('\n')
    .filter((line) => /error:|ERROR:/.test(line))
    .map((line) => line.replace(/postgres(ql)?:\/\/\S+/g, '<database>'))
    .join('; ') || 'failed without a message';

export class BackupError extends Error {}

/** The major version of pg_dump/pg_restore on the PATH, or undefined when absent. */
export async function clientMajor(tool: 'pg_dump' | 'pg_restore' = 'pg_dump'): Promise<number | undefined> {
  const output = await run(tool, ['--version']).then(
    ({ stdout }) => stdout,
    () => '',
  );
  const match = /\(PostgreSQL\) (\d+)/.exec(output);
  return match ? Number(match[1]) : undefined;
}

export async function serverMajor(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ server_version_num: string }>('show server_version_num');
    return Math.floor(Number(rows[0]!.server_version_num) / 10000);
  } finally {
    await client.end();
  }
}

/** Why this machine cannot back up that server (pg_dump refuses servers newer than itself), or undefined. */
export async function unsupportedReason(url: string): Promise<string | undefined> {
  const [client, server] = [await clientMajor(), await serverMajor(url)];
  if (client === undefined) return 'pg_dump is not installed';
  if (client < server) return `pg_dump ${client} cannot dump a PostgreSQL ${server} server (needs pg_dump ${server} or newer)`;
  return undefined;
}

/** Custom-format dump of one database; throws BackupError (and leaves no file) when pg_dump fails. */
export async function dumpDatabase(url: string, file: string): Promise<void> {
  const { dbname, env } = connection(url);
  const partial = `${file}.partial`;
  try {
    await run('pg_dump', ['--format=custom', '--no-password', `--file=${partial}`, `--dbname=${dbname}`], { env });
    await rename(partial, file);
  } catch (error) {
    await rm(partial, { force: true });
    throw new BackupError(`pg_dump failed: ${reason((error as { stderr?: string }).stderr ?? '')}`);
  }
}

/** Restores a custom-format dump into an empty database, all or nothing. */
export async function restoreDatabase(url: string, file: string): Promise<void> {
  const { dbname, env } = connection(url);
  try {
    await run('pg_restore', ['--exit-on-error', '--single-transaction', '--no-password', `--dbname=${dbname}`, file], { env });
  } catch (error) {
    throw new BackupError(`pg_restore failed: ${reason((error as { stderr?: string }).stderr ?? '')}`);
  }
}
