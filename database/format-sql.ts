/**
 * SQL that PostgreSQL cannot parameterise (DDL, COPY (query), identifiers): the statement is built by the
 * server's own `format()`, `%I` identifiers and `%L` literals quoted by PostgreSQL, values passed as parameters.
 */
import type pg from 'pg';

export async function formatSql(client: pg.ClientBase, template: string, ...values: (string | number)[]): Promise<string> {
  const args = values.map((_, i) => `$${i + 2}::text`).join(', ');
  const { rows } = await client.query<{ sql: string }>(`select format($1${args ? `, ${args}` : ''}) as sql`, [template, ...values.map(String)]);
  return rows[0]!.sql;
}

/** Formats, then runs, one statement. */
export async function runFormatted(client: pg.ClientBase, template: string, ...values: (string | number)[]): Promise<void> {
  await client.query(await formatSql(client, template, ...values));
}
