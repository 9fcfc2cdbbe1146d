/**
 * Legacy databases are named by a URL template whose database name holds `{slug}`, e.g.
 * `postgres://user@host:5432/district_{slug}`. One helper turns it into per-district URLs, the server's
 * maintenance URL and a LIKE pattern, and redacts passwords before a URL is ever printed.
 */
import pg from 'pg';

const SLUG = /^[a-z0-9][a-z0-9-]{0,47}$/;

export class SourceTemplate {
  readonly template: string;
  readonly #url: URL;
  readonly #databasePrefix: string;
  readonly #databaseSuffix: string;

  constructor(template: string) {
    let url: URL;
    try {
      url = new URL(template.replace('{slug}', 'SLUG_PLACEHOLDER'));
    } catch {
      throw new Error('--source must be a postgres:// URL whose database name contains {slug}');
    }
    const database = decodeURIComponent(url.pathname.slice(1));
    const [prefix, suffix, ...rest] = database.split('SLUG_PLACEHOLDER');
    if (!['postgres:', 'postgresql:'].includes(url.protocol) || suffix === undefined || rest.length) {
      throw new Error('--source must be a postgres:// URL whose database name contains {slug} once');
    }
    this.template = template;
    this.#url = url;
    this.#databasePrefix = prefix!;
    this.#databaseSuffix = suffix;
  }

  databaseOf(slug: string): string {
    if (!SLUG.test(slug)) throw new Error(`district slug must be lower-case letters, digits and -, got "${slug}"`);
    return `${this.#databasePrefix}${slug}${this.#databaseSuffix}`;
  }

  urlOf(slug: string): string {
    return this.#withDatabase(this.databaseOf(slug));
  }

  /** The same server's `postgres` database, to list and create district databases. */
  get maintenanceUrl(): string {
    return this.#withDatabase('postgres');
  }

  /** Slugs of the existing district databases, in name order. */
  async listSlugs(): Promise<string[]> {
    const client = await connect(this.maintenanceUrl, 'the legacy server');
    try {
      const { rows } = await client.query<{ datname: string }>('select datname from pg_database where not datistemplate order by datname');
      return rows
        .map((r) => r.datname)
        .filter((name) => name.startsWith(this.#databasePrefix) && name.endsWith(this.#databaseSuffix))
        .map((name) => name.slice(this.#databasePrefix.length, name.length - this.#databaseSuffix.length))
        .filter((slug) => SLUG.test(slug));
    } finally {
      await client.end();
    }
  }

  #withDatabase(database: string): string {
    const url = new URL(this.#url);
    url.pathname = `/${encodeURIComponent(database)}`;
    return url.toString();
  }
}

/** A URL fit to print: no password. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable URL)';
  }
}

/** Connects or throws a one-line error naming what could not be reached (never the password). */
export async function connect(url: string, what: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  client.on('error', () => {}); // a dropped connection surfaces on the next query instead of crashing the process
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => {});
    throw new Error(`cannot connect to ${what} (${redactUrl(url)}): ${(error as Error).message}`, { cause: error });
  }
  return client;
}
