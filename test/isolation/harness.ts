/**
 * The attack battery's harness: one platform on a one-connection pool, the attacker (North Valley) and
 * what it must never see (every id and name of the other districts, read as the owner), and `attack()`,
 * which registers a case and counts it. `expectNoForeign*` records a leak before failing, so the closing
 * line `isolation: N attacks, 0 leaks` counts leaks apart from other failures.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTenantContextSigner, type TenantContext } from '../../tenancy/tenant-context.ts';
import { DEMO_DISTRICTS } from '../../dev/seed.ts';
import { demo, startTestPlatform, type GraphQLResult, type TestPlatform } from '../support/platform.ts';

export const NORTH = demo('north-valley').tenantId;
export const SOUTH = demo('south-ridge').tenantId;
export const EAST = demo('east-lake').tenantId;

export interface DistrictRows {
  schools: string[];
  students: string[];
  staff: string[];
  sections: string[];
}

export interface Battery {
  platform: TestPlatform;
  rows: Record<string, DistrictRows>;
  sign(tenantId: string, audience: string): Promise<string>;
  /** Every SQL statement the subgraphs have sent, by subgraph; a test may empty it first. */
  statements: { service: string; sql: string }[];
}

const tally = { attacks: 0, leaks: 0, failed: 0 };
let foreignMarkers: string[] = [];
const current = {} as Battery;

/** Starts the platform for the whole battery and prints the closing line after the last case. */
export function useBattery(): Battery {
  beforeAll(async () => {
    // One connection per subgraph: every request of every district shares it (the "tiny pool").
    current.statements = [];
    current.platform = await startTestPlatform({ poolSize: 1, districtStatusTtlMs: 0 }, (service, sql) => current.statements.push({ service, sql }));
    const signer = await createTenantContextSigner(current.platform.keys.context.privateJwk);
    current.sign = (tenantId, audience) => signer({ tenantId, subject: 'battery', requestId: randomUUID() } satisfies TenantContext, audience);
    current.rows = await readAllRows(current.platform);
    const others = DEMO_DISTRICTS.filter((d) => d.tenantId !== NORTH);
    foreignMarkers = [
      ...others.flatMap((d) => [d.tenantId, d.name, d.slug, d.slug.split('-').map((w) => w[0]!.toUpperCase() + w.slice(1)).join(' ')]),
      ...others.flatMap((d) => Object.values(current.rows[d.tenantId]!).flat()),
    ];
  });
  afterAll(async () => {
    await current.platform?.stop();
    const failures = tally.failed > tally.leaks ? `, ${tally.failed - tally.leaks} other failures` : '';
    console.log(`isolation: ${tally.attacks} attacks, ${tally.leaks} leaks${failures}`);
  });
  return current;
}

async function readAllRows(platform: TestPlatform): Promise<Record<string, DistrictRows>> {
  const query = async (service: string, sql: string) => {
    const owner = await platform.connect(platform.databases[service]!.ownerUrl);
    return (await owner.query<{ tenant_id: string; id: string }>(sql)).rows;
  };
  const rows = Object.fromEntries(DEMO_DISTRICTS.map((d): [string, DistrictRows] => [d.tenantId, { schools: [], students: [], staff: [], sections: [] }]));
  const collect = (kind: keyof DistrictRows, found: { tenant_id: string; id: string }[]) => {
    for (const row of found) rows[row.tenant_id]?.[kind].push(row.id);
  };
  collect('schools', await query('districts', 'select tenant_id, id from school order by name, id'));
  collect('students', await query('students', 'select tenant_id, id from student order by last_name, first_name, id'));
  collect('staff', await query('staff', 'select tenant_id, id from staff_member order by last_name, first_name, id'));
  collect('sections', await query('staff', 'select tenant_id, id from section order by name, id'));
  // Every attack compares against these lists: an empty one would let an attack pass without proving anything.
  for (const district of DEMO_DISTRICTS) {
    for (const [kind, ids] of Object.entries(rows[district.tenantId]!)) expect(ids.length, `${district.slug} ${kind}`).toBeGreaterThan(0);
  }
  return rows;
}

/** Registers one attack; it counts towards the closing line. */
export function attack(name: string, run: () => Promise<void>): void {
  it(name, async () => {
    tally.attacks++;
    try {
      await run();
    } catch (error) {
      tally.failed++;
      throw error;
    }
  });
}

/** Fails (and counts a leak) when the text mentions any id or name of another district. */
export function expectNoForeignData(text: string): void {
  const lower = text.toLowerCase();
  const seen = foreignMarkers.filter((marker) => lower.includes(marker.toLowerCase()));
  if (seen.length) tally.leaks++;
  expect(seen, 'foreign data in the response').toEqual([]);
}

/** Fails (and counts a leak) when any row belongs to a district other than `tenantId`. */
export function expectOnlyTenant(rows: { tenant_id: string }[], tenantId: string = NORTH): void {
  const foreign = rows.filter((row) => row.tenant_id !== tenantId);
  if (foreign.length) tally.leaks++;
  expect(foreign, 'rows of another district').toEqual([]);
}

/** A refusal before any GraphQL work: exact status and body, and nothing foreign in it. */
export function expectRefusal(result: GraphQLResult, status: number, message: string, code: string): void {
  expectNoForeignData(result.text);
  expect(result.status).toBe(status);
  expect(result.body).toEqual({ errors: [{ message, extensions: { code } }] });
}

/** A served request: no errors, and nothing foreign anywhere in it. */
export function expectServedWithoutForeignData(result: GraphQLResult): void {
  expectNoForeignData(result.text);
  expect(result.status).toBe(200);
  expect(result.body.errors).toBeUndefined();
}
