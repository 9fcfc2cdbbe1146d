/**
 * Automatic persisted queries (APQ), one namespace per district. Apollo Server keeps a sha256 → query text map
 * that any caller can probe by sending a hash alone; shared across districts, "is this hash known?" would tell
 * one district that another has recently sent exactly that text. Apollo passes the cache no request, so the
 * caller's district travels in an AsyncLocalStorage set by the gateway's request handler around each
 * operation, and every key is prefixed with it. Without a district (never, in a request) the cache finds
 * nothing and keeps nothing: fail closed.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { LRUCache } from 'lru-cache';

const callerDistrict = new AsyncLocalStorage<string>();

/** Runs one request's work with its district visible to the persisted-query cache. */
export const withCallerDistrict = <T>(tenantId: string, work: () => T): T => callerDistrict.run(tenantId, work);

/** Apollo Server's default APQ budget (its InMemoryLRUCache): 30 MiB of query text, shared by all districts. */
const MAX_CACHED_CHARACTERS = 30 * 2 ** 20;

/** A KeyValueCache (Apollo's interface) whose entries belong to the district of the request that wrote them. */
export function createDistrictPersistedQueryCache(maxCharacters = MAX_CACHED_CHARACTERS) {
  // One LRU for all districts: a district sending many new texts can evict another's entries, whose clients then
  // send the full text once more (the APQ protocol's normal miss); it learns nothing about them.
  const cache = new LRUCache<string, string>({ maxSize: maxCharacters, sizeCalculation: (value, key) => value.length + key.length });
  const keyOf = (key: string) => {
    const district = callerDistrict.getStore();
    return district === undefined ? undefined : `${district}:${key}`;
  };
  return {
    async get(key: string): Promise<string | undefined> {
      const scoped = keyOf(key);
      return scoped === undefined ? undefined : cache.get(scoped);
    },
    async set(key: string, value: string, options?: { ttl?: number | null }): Promise<void> {
      const scoped = keyOf(key);
      if (scoped !== undefined) cache.set(scoped, value, options?.ttl ? { ttl: options.ttl * 1000 } : undefined);
    },
    async delete(key: string): Promise<boolean> {
      const scoped = keyOf(key);
      return scoped === undefined ? false : cache.delete(scoped);
    },
  };
}
