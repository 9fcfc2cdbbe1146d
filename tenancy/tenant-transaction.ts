/**
 * The only place that opens a tenant context on the database. Everything that reads or writes tenant
 * rows as the application role (request handlers, seeding, tests) goes through here.
 *
 * The transaction is opened here, on a connection of the pool MikroORM owns (same connections, same type
 * parsers), and handed to the entity manager as its transaction context. `begin` and the transaction-local tenant
 * setting travel in one simple-protocol string with the transaction's first statement, so a request costs one
 * round trip per statement plus its `commit`, and an operation that sends no SQL opens no transaction at all.
 */
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import pg from 'pg';
import { isUuid } from './tenant-context.ts';
import { TENANT_FILTER, TENANT_SETTING } from './tenant-table.ts';

/** A fresh entity manager whose queries carry the tenant filter (no transaction, no tenant setting: see inTenantTransaction). */
export function forkForTenant(orm: MikroORM, tenantId: string): EntityManager {
  if (!isUuid(tenantId)) throw new Error('refusing to open a tenant context without a valid tenant id');
  const em = orm.em.fork();
  em.setFilterParams(TENANT_FILTER, { tenantId });
  return em;
}

export interface TenantTransactionOptions {
  /**
   * Asked when the first statement is sent: true opens the transaction `read only` (a GraphQL query; the operation
   * is known by then, since no SQL runs before execution starts).
   */
  readOnly?: () => boolean;
  /** Told when a transaction that sent SQL ends: its duration from the statement that began it, and whether it committed (metrics). */
  onEnd?: (seconds: number, committed: boolean) => void;
}

/** The query MikroORM hands a transaction context (Kysely's CompiledQuery, built by AbstractSqlConnection.execute). */
interface CompiledStatement {
  sql: string;
  parameters: readonly unknown[];
}

/** What MikroORM reads from a transaction context's result (AbstractSqlConnection.transformRawResult). */
interface StatementResult {
  rows: Record<string, unknown>[];
  numAffectedRows?: bigint;
}

const WRITES = new Set(['INSERT', 'UPDATE', 'DELETE', 'MERGE']);

/**
 * One tenant transaction on one pooled connection, as MikroORM's transaction context. MikroORM calls only
 * `executeQuery` on a context it did not open (queries, and flushes: a flush inside a transaction opens no
 * savepoint); anything else it could call (savepoints for a nested `transactional`, streams, commit) would bypass
 * this module, so those fail loudly.
 */
class TenantTransaction {
  readonly #pool: pg.Pool;
  readonly #begin: (readOnly: boolean) => string;
  readonly #readOnly: () => boolean;
  readonly #log: (sql: string) => void;
  readonly #onEnd: TenantTransactionOptions['onEnd'];
  #client: Promise<pg.PoolClient> | undefined;
  #begun = false;
  #begunAt = 0;
  #released = false;

  constructor(pool: pg.Pool, tenantId: string, options: TenantTransactionOptions, log: (sql: string) => void) {
    // Validated as a UUID by forkForTenant before this runs; quoted as a literal all the same.
    const setting = `select set_config(${pg.escapeLiteral(TENANT_SETTING)}, ${pg.escapeLiteral(tenantId)}, true)`;
    this.#begin = (readOnly) => `${readOnly ? 'begin read only' : 'begin'}; ${setting}`;
    this.#pool = pool;
    this.#readOnly = options.readOnly ?? (() => false);
    this.#onEnd = options.onEnd;
    this.#log = log;
  }

  async executeQuery(compiled: CompiledStatement): Promise<StatementResult> {
    const client = await (this.#client ??= this.#pool.connect());
    let sql = compiled.sql;
    // Checked and set with the statement queued in the same synchronous step: pg sends a client's queries in order.
    if (!this.#begun) {
      this.#begun = true;
      this.#begunAt = performance.now();
      const begin = this.#begin(this.#readOnly());
      this.#log(begin);
      // A statement with bind parameters goes through the extended protocol, which takes one statement per message.
      if (compiled.parameters.length) await client.query(begin);
      else sql = `${begin}; ${sql}`;
    }
    const results = (await client.query<Record<string, unknown>>(sql, compiled.parameters as unknown[])) as
      pg.QueryResult<Record<string, unknown>> | pg.QueryResult<Record<string, unknown>>[];
    const last = Array.isArray(results) ? results[results.length - 1]! : results;
    return {
      rows: last.rows ?? [],
      numAffectedRows: WRITES.has(last.command) && last.rowCount !== null ? BigInt(last.rowCount) : undefined,
    };
  }

  /** Commits (throws when the commit fails: the caller then rolls back) and releases the connection. */
  async commit(): Promise<void> {
    const client = await this.#acquired();
    if (!client) return;
    if (this.#begun) {
      this.#log('commit');
      await client.query('commit');
      this.#onEnd?.((performance.now() - this.#begunAt) / 1000, true);
    }
    this.#release(client);
  }

  /** Rolls back and releases the connection; a connection that cannot roll back is closed instead. Never throws. */
  async rollback(): Promise<void> {
    const client = await this.#acquired();
    if (!client) return;
    if (!this.#begun) return this.#release(client);
    this.#log('rollback');
    this.#onEnd?.((performance.now() - this.#begunAt) / 1000, false);
    try {
      await client.query('rollback');
      this.#release(client);
    } catch (error) {
      // Its state is unknown: the pool drops a client released with an error, so no later request can inherit it.
      this.#release(client, error instanceof Error ? error : new Error(String(error)));
    }
  }

  async #acquired(): Promise<pg.PoolClient | undefined> {
    if (!this.#client || this.#released) return undefined;
    // A connection that was never obtained has nothing to end (its error reached the statement that asked for it).
    return this.#client.catch(() => undefined);
  }

  #release(client: pg.PoolClient, error?: Error): void {
    if (this.#released) return;
    this.#released = true;
    client.release(error);
  }

  savepoint(): never {
    return refuse('savepoint (a nested transactional)');
  }
  releaseSavepoint(): never {
    return refuse('releaseSavepoint');
  }
  rollbackToSavepoint(): never {
    return refuse('rollbackToSavepoint');
  }
  getExecutor(): never {
    return refuse('getExecutor (streaming or a raw Kysely query)');
  }
}

function refuse(what: string): never {
  throw new Error(`${what} is not supported inside a tenant transaction (tenancy/tenant-transaction.ts)`);
}

/**
 * Runs `work` in one transaction for `tenantId`: flushed and committed when it resolves, rolled back when it throws. The
 * transaction starts with `select set_config('app.current_tenant', <tenant>, true)` (transaction-local), sent with
 * `begin` and the first statement in one round trip.
 */
export async function inTenantTransaction<T>(
  orm: MikroORM,
  tenantId: string,
  work: (em: EntityManager) => Promise<T>,
  options: TenantTransactionOptions = {},
): Promise<T> {
  const em = forkForTenant(orm, tenantId);
  const logger = orm.config.getLogger();
  const log = (sql: string) => {
    if (logger.isEnabled('query')) logger.logQuery({ query: sql, level: 'info' });
  };
  // The pg pool MikroORM created (with its type parsers); asked each time, as MikroORM may reconnect after a close.
  const pool = await orm.em.getConnection().getNativeClient();
  const transaction = new TenantTransaction(pool, tenantId, options, log);
  em.setTransactionContext(transaction);
  let result: T;
  try {
    result = await work(em);
    // What `work` persisted and did not flush is written before the commit (a read-only transaction has nothing).
    if (!options.readOnly?.()) await em.flush();
    await transaction.commit();
  } catch (error) {
    await transaction.rollback();
    throw error;
  }
  return result;
}
