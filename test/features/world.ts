/** What the feature steps share: the platform, the demo districts' ids, and the last answer. */
import { expect } from 'vitest';
import type { GraphQLResult, TestPlatform } from '../support/platform.ts';

export const EVERYTHING = `{
  district { id name }
  schools { id }
  students(first: 100) { edges { node { id school { id } } } }
  staff { id }
  sections { id students { id } }
}`;

/** Every UUID in a response. */
export const idsIn = (text: string) => text.match(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g) ?? [];

/** The ids of every row a district owns, read as the owner (past RLS) so the check does not trust the system under test. */
export async function ownedIds(platform: TestPlatform, tenantId: string): Promise<Set<string>> {
  const ids = new Set([tenantId]);
  const tables: [string, string][] = [['districts', 'school'], ['students', 'student'], ['students', 'enrollment'], ['staff', 'staff_member'], ['staff', 'section']];
  for (const [service, table] of tables) {
    const owner = await platform.connect(platform.databases[service]!.ownerUrl);
    // Fixed table names from the list above.
    const { rows } = await owner.query<{ id: string }>(`select id from ${table} where tenant_id = $1`, [tenantId]);
    for (const row of rows) ids.add(row.id);
  }
  return ids;
}

export function expectRefused(answer: GraphQLResult, status: number, message: string, code: string) {
  expect(answer.status).toBe(status);
  expect(answer.body).toEqual({ errors: [{ message, extensions: { code } }] });
}
