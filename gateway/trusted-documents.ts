/**
 * Trusted documents: the operations of operations/persisted-query-manifest.json (`npm run operations:manifest`),
 * run by their sha256 (`extensions.persistedQuery.sha256Hash`, as Apollo Client's persisted-query link sends it).
 * `allow`: a manifest hash runs its operation, any other hash goes to the per-district automatic persisted queries
 * (persisted-queries.ts), and any text runs. `enforce`: only the manifest's operations run — an unknown hash is
 * refused with PERSISTED_QUERY_NOT_IN_LIST, a text that is not a manifest operation with OPERATION_NOT_TRUSTED
 * (both 400, before any parsing or planning). A manifest text sent in full is accepted with any layout: its
 * whitespace, commas and comments do not count.
 */
import type { HTTPGraphQLRequest } from '@apollo/server';
import { stripIgnoredCharacters } from 'graphql';
import type { TrustedDocumentsMode } from '../config/config.ts';
import { HttpError } from '../http/server.ts';
import { sha256Hex, type OperationsManifest } from '../schema/operations-manifest.ts';

export const PERSISTED_QUERY_NOT_IN_LIST = 'PERSISTED_QUERY_NOT_IN_LIST';
export const OPERATION_NOT_TRUSTED = 'OPERATION_NOT_TRUSTED';

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

const hashOf = (extensions: unknown): string | undefined => {
  const persisted = isRecord(extensions) ? extensions.persistedQuery : undefined;
  const hash = isRecord(persisted) ? persisted.sha256Hash : undefined;
  return typeof hash === 'string' ? hash : undefined;
};

/** Returns the request to run (a manifest hash sent alone gets its text), or throws the 400 of `enforce`. */
export type AdmitRequest = (request: HTTPGraphQLRequest) => HTTPGraphQLRequest;

export function createTrustedDocuments(manifest: OperationsManifest, mode: TrustedDocumentsMode): AdmitRequest {
  const bodies = new Map(manifest.operations.map((operation) => [operation.id, operation.body]));
  const stripped = new Set(manifest.operations.map((operation) => stripIgnoredCharacters(operation.body)));
  // A longer text cannot be a manifest operation laid out by a person or a tool; it is refused without being lexed.
  const longestText = 2 * Math.max(0, ...manifest.operations.map((operation) => operation.body.length)) + 1024;
  const enforce = mode === 'enforce';

  const isTrustedText = (query: string) => {
    if (bodies.has(sha256Hex(query))) return true;
    if (query.length > longestText) return false;
    try {
      return stripped.has(stripIgnoredCharacters(query));
    } catch {
      return false; // not even lexable
    }
  };
  const notTrusted = () =>
    new HttpError(
      400,
      OPERATION_NOT_TRUSTED,
      'Only trusted documents run here: send an operation of the manifest (operations/), by its sha256 in extensions.persistedQuery',
    );

  return (request) => {
    let query: unknown;
    let hash: string | undefined;
    if (request.method === 'POST') {
      if (!isRecord(request.body)) return request; // a batch or a non-JSON body: Apollo refuses it
      query = request.body.query;
      // The common case of `allow`: text, no hash, nothing to do.
      if (!enforce && request.body.extensions === undefined) return request;
      hash = hashOf(request.body.extensions);
    } else {
      if (!enforce && !request.search.includes('extensions')) return request;
      const search = new URLSearchParams(request.search);
      query = search.get('query') ?? undefined;
      try {
        hash = hashOf(JSON.parse(search.get('extensions') ?? 'null'));
      } catch {
        hash = undefined; // Apollo refuses malformed extensions
      }
    }
    if (typeof query === 'string' && query !== '') {
      if (enforce && !isTrustedText(query)) throw notTrusted();
      return request;
    }
    const body = hash === undefined ? undefined : bodies.get(hash);
    if (body === undefined) {
      if (!enforce) return request;
      if (hash === undefined) throw notTrusted();
      throw new HttpError(400, PERSISTED_QUERY_NOT_IN_LIST, 'Persisted query not in the trusted documents list: regenerate the manifest');
    }
    if (request.method === 'POST') return { ...request, body: { ...(request.body as Record<string, unknown>), query: body } };
    const search = new URLSearchParams(request.search);
    search.set('query', body);
    return { ...request, search: `?${search.toString()}` };
  };
}
