/** MikroORM for one service: the same options for its runtime (application role) and its migrations (owner). */
import { fileURLToPath } from 'node:url';
import { MikroORM, type EntitySchema, type Options } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';

const migrationsRoot = fileURLToPath(new URL('../../migrations/', import.meta.url));

export interface OrmOptions {
  service: string;
  entities: EntitySchema[];
  clientUrl: string;
  poolSize?: number;
  /** Sees every SQL statement this ORM sends (tests count statements with it). */
  onQuery?: (sql: string) => void;
}

export function ormConfig({ service, entities, clientUrl, poolSize = 10, onQuery }: OrmOptions): Options {
  const path = `${migrationsRoot}${service}`;
  return {
    entities,
    clientUrl,
    pool: { min: 0, max: poolSize },
    // The per-request transaction carries `set_config(..., true)`; see tenancy.ts.
    sessionContext: 'transaction',
    allowGlobalContext: false,
    extensions: [Migrator],
    migrations: {
      path,
      pathTs: path,
      glob: 'Migration*.ts',
      snapshotName: `.snapshot-${service}`,
      emit: 'ts',
      silent: true,
    },
    preferTs: true,
    debug: onQuery ? ['query'] : false,
    colors: false,
    logger: onQuery ? (message: string) => onQuery(message) : () => {},
  };
}

export const initOrm = (options: OrmOptions) => MikroORM.init(ormConfig(options));
