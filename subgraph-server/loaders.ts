/**
 * Per-request DataLoaders: every entity looked up by key in one request (federation `_entities`,
 * nested fields) is fetched with one statement per entity type and key.
 *
 * In a read-only operation (a GraphQL query) rows come back as plain objects through the fast read path
 * (plain-reads.ts): one prepared SQL text per entity, key and shape, no entity hydration or change tracking.
 * A mutation loads managed entities through the entity manager, since its resolvers change and flush them.
 */
import DataLoader from 'dataloader';
import type { EntityManager, EntityName } from '@mikro-orm/postgresql';
import { isUuid } from '../tenancy/tenant-context.ts';
import { plainReads, type ReadPage } from './plain-reads.ts';

type Row = Record<string, unknown>;

export class Loaders {
  readonly #em: EntityManager;
  readonly #readOnly: () => boolean;
  readonly #loaders = new Map<string, DataLoader<string, unknown>>();

  /** `readOnly`: whether the operation is a query (asked when a loader is first used, during execution). */
  constructor(em: EntityManager, readOnly: () => boolean = () => false) {
    this.#em = em;
    this.#readOnly = readOnly;
  }

  /** Loads one row per key (`null` when the key names no row visible to this tenant). */
  one<T extends object>(entity: EntityName<T>, property = 'id'): DataLoader<string, T | null> {
    return this.#loader(entity as EntityName<object>, property, 'one') as DataLoader<string, T | null>;
  }

  /**
   * Loads the first `limit` rows (in `orderBy` order) whose `property` equals the key (one-to-many): one statement
   * for all keys, each key's rows numbered by `row_number() over (partition by …)`, so a key with thousands of
   * rows still reads only `limit` of them.
   */
  many<T extends object>(entity: EntityName<T>, property: string, page: ReadPage): DataLoader<string, T[]> {
    return this.#loader(entity as EntityName<object>, property, 'many', page) as DataLoader<string, T[]>;
  }

  #loader(entity: EntityName<object>, property: string, shape: 'one' | 'many', page?: ReadPage): DataLoader<string, unknown> {
    const name = typeof entity === 'string' ? entity : (entity as { name: string }).name;
    const cacheKey = `${name}.${property}.${shape}.${page ? `${page.limit}.${JSON.stringify(page.orderBy)}` : ''}`;
    let loader = this.#loaders.get(cacheKey);
    if (!loader) {
      const plain = this.#readOnly();
      // MikroORM's own per-parent limit (what its populate uses for `limit`): not in the public typings of 7.2.1.
      const options = page ? { orderBy: page.orderBy, _partitionLimit: { partitionBy: property, limit: page.limit } } : {};
      loader = new DataLoader<string, unknown>(async (keys) => {
        // A malformed key would make PostgreSQL's uuid cast fail and abort the request's transaction.
        const valid = keys.filter(isUuid);
        let rows: Row[] = [];
        if (valid.length)
          rows = plain
            ? await plainReads(this.#em, entity, property, page).read(this.#em, valid)
            : await this.#em.find(entity, { [property]: { $in: valid } }, options);
        const byKey = new Map<string, Row[]>();
        for (const row of rows) {
          const key = String(row[property]);
          const group = byKey.get(key);
          if (group) group.push(row);
          else byKey.set(key, [row]);
        }
        return keys.map((key) => (shape === 'one' ? (byKey.get(key)?.[0] ?? null) : (byKey.get(key) ?? [])));
      });
      this.#loaders.set(cacheKey, loader);
    }
    return loader;
  }
}
