/** What the feature steps share: the platform, the demo districts' ids, and the last answer. */
import { expect } from 'vitest';
import type { GraphQLResult, TestPlatform } from '../support/platform.ts';
import { listFields, withEveryList } from '../support/graph.ts';
import { discoverTenantTables, idsOf, readTenantRows } from '../support/tenant-tables.ts';

/** The district, and every list a district can read in every subgraph (the lists come from the supergraph). */
export const EVERYTHING = withEveryList(`{
  district { id name }
  schools { id }
  students(first: 100) { edges { node { id school { id } } } }
  staff { id }
  sections { id students { id } }
}`);

/** Every list field EVERYTHING reads, with its records in an answer (a connection's edges count as its records). */
export function listsIn(data: Record<string, unknown>): Record<string, unknown[]> {
  const fields = [...new Set([...listFields(), 'students'])];
  return Object.fromEntries(
    fields.map((field) => {
      const value = data[field];
      return [field, Array.isArray(value) ? value : ((value as { edges?: unknown[] } | undefined)?.edges ?? [])];
    }),
  );
}

/** Every UUID in a response. */
export const idsIn = (text: string) => text.match(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g) ?? [];

/**
 * The ids of every row a district owns in every tenant table of every registered service (found in the
 * catalog), read as the owner (past RLS) so the check does not trust the system under test.
 */
export async function ownedIds(platform: TestPlatform, tenantId: string): Promise<Set<string>> {
  const rows = await readTenantRows(platform, await discoverTenantTables(platform));
  return new Set([tenantId, ...idsOf(Object.values(rows[tenantId] ?? {}).flat())]);
}

export function expectRefused(answer: GraphQLResult, status: number, message: string, code: string) {
  expect(answer.status).toBe(status);
  expect(answer.body).toEqual({ errors: [{ message, extensions: { code } }] });
}
