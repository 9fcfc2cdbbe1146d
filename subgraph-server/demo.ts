/**
 * A subgraph's demo data: `subgraphs/<name>/demo.ts` exports `demo`, which `npm start` and the tests run for
 * each demo district (dev/seed.ts), in registry order, each in one tenant transaction of its own service —
 * the same path as a request. Optional; the isolation battery attacks the tables of every service and needs
 * rows of several districts in each, so a subgraph with tables should have one.
 */
import type { EntityManager } from '@mikro-orm/postgresql';

export interface DemoDistrict {
  tenantId: string;
  slug: string;
  name: string;
}

export interface DemoContext {
  district: DemoDistrict;
  /** "North Valley" for north-valley. */
  label: string;
  /** The district's deterministic random sequence, shared by the services in registry order. */
  random(): number;
  pick<T>(list: readonly T[]): T;
  firstName(): string;
  lastName(): string;
  /** Ids the services seeded earlier published (e.g. `school`), each in the order they published them. */
  ids: Readonly<Record<string, readonly string[]>>;
}

/**
 * Seeds one district; leaves alone what is already there (a restart seeds nothing twice). Returns ids the
 * services after it may reference, by a name of its choice.
 */
export type DemoSeed = (em: EntityManager, context: DemoContext) => Promise<Record<string, string[]> | void>;
