/**
 * The only place that opens a tenant context on the database. Everything that reads or writes tenant
 * rows as the application role (request handlers, seeding, tests) goes through here.
 *
 * The transaction is opened here, on a connection of the pool MikroORM owns (same connections, same type
 * parsers), and handed to the entity manager as its transaction context. `begin` and the transaction-local tenant
 * setting travel in one simple-protocol string with the transaction's first statement, so a request costs one
 * round trip per statement plus its `commit`, and an operation that sends no SQL opens no transaction at all.
 *
 * Transient faults are met here too, so every caller meets them alike: each statement's error is classified where
 * it is sent. A serialization failure, a deadlock, or a connection lost before `commit` was sent re-runs the WHOLE
 * transaction (a fresh entity manager and `work` again: never one statement inside a transaction), with a cockatiel
 * retry policy (exponential backoff, decorrelated jitter). A connection lost while `commit` was in flight leaves
 * the outcome unknown: a write then is never retried (CommitOutcomeUnknownError), a read-only one is.
 */
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { ExponentialBackoff, decorrelatedJitterGenerator, handleType, retry, type RetryPolicy } from 'cockatiel';
import pg from 'pg';
import type { DatabaseFaults } from '../config/config.ts';
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
  /**
   * Meets database faults (the request path): re-runs the whole transaction on a retryable one
   * (tenantTransactionRetry), and fails with DatabaseUnavailableError or CommitOutcomeUnknownError. Without it, one
   * attempt, failing with the database's own error (seeds, tools, tests).
   */
  retry?: RetryPolicy;
}

/**
 * What went wrong with the database rather than with the work: `serialization` (40001) and `deadlock` (40P01) and
 * `connection` (lost, refused, reset, no answer in time) are retried; `busy` (no pooled connection in time, a
 * statement or lock timeout) is not: retrying would only add load where there is too much.
 */
export type DatabaseFault = 'serialization' | 'deadlock' | 'connection' | 'busy';

const CONNECTION_CODES = new Set(['57P01', '57P02', '57P03', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH']);
/** pg's own messages for a connection that is gone or never answered (they carry no code). */
const CONNECTION_MESSAGES = /^(Connection terminated|Client has encountered a connection error|Query read timeout|Client was closed)/;

export function databaseFaultOf(error: unknown): DatabaseFault | undefined {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (code === '40001') return 'serialization';
  if (code === '40P01') return 'deadlock';
  // 57014: statement_timeout (or a cancel); 55P03: lock_timeout.
  if (code === '57014' || code === '55P03' || message === 'timeout exceeded when trying to connect') return 'busy';
  if (
    (typeof code === 'string' && (code.startsWith('08') || CONNECTION_CODES.has(code))) ||
    (typeof message === 'string' && CONNECTION_MESSAGES.test(message))
  )
    return 'connection';
  return undefined;
}

/** The database could not serve the transaction (after its retries): answered 503 with Retry-After. */
export class DatabaseUnavailableError extends Error {
  readonly fault: DatabaseFault;
  constructor(fault: DatabaseFault) {
    super(`tenant transaction failed on the database: ${fault}`);
    this.fault = fault;
  }
}

/** A write whose `commit` was in flight when its connection was lost: it may or may not have committed. Never retried. */
export class CommitOutcomeUnknownError extends Error {
  constructor() {
    super('the connection was lost while the transaction was committing');
  }
}

/** Internal: one attempt failed on a fault worth another attempt. */
class RetryableFault extends Error {
  readonly fault: DatabaseFault;
  constructor(fault: DatabaseFault) {
    super(fault);
    this.fault = fault;
  }
}

/** The retry of whole tenant transactions: `retries` more attempts, exponential backoff with decorrelated jitter. */
export function tenantTransactionRetry(faults: Pick<DatabaseFaults, 'retry'>): RetryPolicy {
  return retry(handleType(RetryableFault), {
    maxAttempts: faults.retry.retries,
    backoff: new ExponentialBackoff({
      initialDelay: faults.retry.initialDelayMs,
      maxDelay: faults.retry.maxDelayMs,
      generator: decorrelatedJitterGenerator,
    }),
  });
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
  /** The first database fault a statement or the commit met. */
  fault: DatabaseFault | undefined;
  /** Set when the connection was lost while `commit` was in flight. */
  commitOutcomeUnknown = false;

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
    try {
      return await this.#execute(compiled);
    } catch (error) {
      this.fault ??= databaseFaultOf(error);
      throw error;
    }
  }

  get readOnly(): boolean {
    return this.#readOnly();
  }

  async #execute(compiled: CompiledStatement): Promise<StatementResult> {
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
      try {
        await client.query('commit');
      } catch (error) {
        const fault = databaseFaultOf(error);
        this.fault ??= fault;
        // The server may have committed before the connection went: nothing tells which.
        if (fault === 'connection') this.commitOutcomeUnknown = true;
        throw error;
      }
      this.#onEnd?.((performance.now() - this.#begunAt) / 1000, true);
    }
    this.#release(client);
  }

  /** Rolls back and releases the connection; a connection that cannot roll back is closed instead. Never throws. */
  async rollback(): Promise<void> {
    const client = await this.#acquired();
    if (!client) return;
    if (!this.#begun) return this.#release(client);
    this.#onEnd?.((performance.now() - this.#begunAt) / 1000, false);
    // A connection that is gone or stuck (no answer in time) is closed rather than asked to roll back: the server
    // rolls back a transaction whose connection closes, and a rollback queued behind a stuck statement would wait too.
    if (this.fault === 'connection') return this.#release(client, new Error('connection fault'));
    this.#log('rollback');
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
 * `begin` and the first statement in one round trip. With `options.retry`, a retryable fault re-runs it whole.
 *
 * Throws `work`'s own error; or, with `options.retry`, when the database failed it, DatabaseUnavailableError (retries
 * exhausted, or busy) or CommitOutcomeUnknownError (a write whose commit was in flight when the connection was lost).
 */
export async function inTenantTransaction<T>(
  orm: MikroORM,
  tenantId: string,
  work: (em: EntityManager) => Promise<T>,
  options: TenantTransactionOptions = {},
): Promise<T> {
  const once = () => attempt(orm, tenantId, work, options);
  try {
    return options.retry ? await options.retry.execute(once) : await once();
  } catch (error) {
    if (error instanceof RetryableFault) throw new DatabaseUnavailableError(error.fault);
    throw error;
  }
}

async function attempt<T>(
  orm: MikroORM,
  tenantId: string,
  work: (em: EntityManager) => Promise<T>,
  options: TenantTransactionOptions,
): Promise<T> {
  const em = forkForTenant(orm, tenantId);
  const logger = orm.config.getLogger();
  const log = (sql: string) => {
    if (logger.isEnabled('query')) logger.logQuery({ query: sql, level: 'info' });
  };
  // The pg pool MikroORM created (with its type parsers); asked each time, as MikroORM may reconnect after a close
  // (and connects first when it never could: a database that was down when the service started).
  let pool: pg.Pool;
  try {
    pool = await orm.em.getConnection().getNativeClient();
  } catch (error) {
    const fault = databaseFaultOf(error);
    if (!fault || !options.retry) throw error;
    throw fault === 'busy' ? new DatabaseUnavailableError(fault) : new RetryableFault(fault);
  }
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
    // The database's fault decides over whatever `work` made of it (a resolver's error, a rollback signal).
    const { fault } = transaction;
    if (!fault || !options.retry) throw error;
    if (transaction.commitOutcomeUnknown && !transaction.readOnly) throw new CommitOutcomeUnknownError();
    if (fault === 'busy') throw new DatabaseUnavailableError(fault);
    throw new RetryableFault(fault);
  }
  return result;
}
