/** MikroORM for one service: the same options for its runtime (application role) and its migrations (owner). */
import { MikroORM, type EntitySchema, type Options } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import type { DatabaseFaults } from '../config/config.ts';
import { projectPath, readRegistry, snapshotName } from '../config/registry.ts';
import { TenantMigrationGenerator } from './migration-generator.ts';

export interface OrmOptions {
  service: string;
  entities: EntitySchema[];
  clientUrl: string;
  poolSize?: number;
  /** Sees every SQL statement this ORM sends (tests count statements with it). */
  onQuery?: (sql: string) => void;
  /** A service's runtime timeouts (never the migrations': a long migration must not be cut). */
  faults?: DatabaseFaults;
}

/** The pg pool and session settings of a service's runtime connections (pg sends the three timeouts at connect). */
const runtimeDriverOptions = (faults: DatabaseFaults) => ({
  connectionTimeoutMillis: faults.acquireTimeoutMs,
  statement_timeout: faults.statementTimeoutMs,
  lock_timeout: faults.lockTimeoutMs,
  idle_in_transaction_session_timeout: faults.idleInTransactionTimeoutMs,
  query_timeout: faults.queryTimeoutMs,
});

export function ormConfig({ service, entities, clientUrl, poolSize = 10, onQuery, faults }: OrmOptions): Options {
  const entry = readRegistry().find((s) => s.name === service);
  if (!entry) throw new Error(`${service} is not in the service registry (schema/subgraphs.json)`);
  const path = projectPath(entry.migrations);
  return {
    entities,
    // Migrations alone need no entities (they are SQL); the runtime and migration:create pass them.
    discovery: { warnWhenNoEntities: false },
    clientUrl,
    pool: { min: 0, max: poolSize },
    ...(faults ? { driverOptions: runtimeDriverOptions(faults) } : {}),
    // The per-request transaction carries `set_config(..., true)`; see tenancy.ts.
    sessionContext: 'transaction',
    allowGlobalContext: false,
    extensions: [Migrator],
    migrations: {
      path,
      pathTs: path,
      glob: 'Migration*.ts',
      snapshotName: snapshotName(entry),
      emit: 'ts',
      generator: TenantMigrationGenerator,
      silent: true,
    },
    preferTs: true,
    debug: onQuery ? ['query'] : false,
    colors: false,
    logger: onQuery ? (message: string) => onQuery(message) : () => {},
  };
}

export const initOrm = (options: OrmOptions) => MikroORM.init(ormConfig(options));
