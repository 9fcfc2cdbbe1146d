/**
 * The attack battery's harness: one platform on a one-connection pool, its tenant tables (from the catalog
 * of every registered service's database), the attacker (North Valley) and what it must never see (every
 * id and name of the other districts in every table, read as the owner), and `attack()`,
 * which registers a case and counts it. `expectNoForeign*` records a leak before failing, so the closing
 * line `isolation: N attacks, 0 leaks` counts leaks apart from other failures.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, expect, it } from 'vitest';
import { createTenantContextSigner, type TenantContext } from '../../tenancy/tenant-context.ts';
import { DEMO_DISTRICTS } from '../../dev/seed.ts';
import { demo, startTestPlatform, type GraphQLResult, type TestPlatform } from '../support/platform.ts';
import {
  discoverForeignKeys,
  discoverTenantTables,
  auditDemoDistricts,
  idsOf,
  readTenantRows,
  type TenantForeignKey,
  type TenantTable,
} from '../support/tenant-tables.ts';

export const NORTH = demo('north-valley').tenantId;
export const SOUTH = demo('south-ridge').tenantId;
export const EAST = demo('east-lake').tenantId;

export interface Battery {
  platform: TestPlatform;
  /** Every tenant table of every registered service, from the catalog. */
  tables: TenantTable[];
  foreignKeys: TenantForeignKey[];
  /** Row keys (the `id`, or the key columns joined with '/') by tenant, then table name, read as the owners. */
  rows: Record<string, Record<string, string[]>>;
  /** A district's row keys of one table (empty when it has none). */
  keys(tenantId: string, table: string): string[];
  sign(tenantId: string, audience: string): Promise<string>;
  /** Every SQL statement the subgraphs have sent, by subgraph; a test may empty it first. */
  statements: { service: string; sql: string }[];
}

const tally = { attacks: 0, leaks: 0, failed: 0 };
let foreignMarkers: string[] = [];

/**
 * Starts the platform for the whole battery (at collection time: the attacks are registered per table the
 * catalog holds) and prints the closing line after the last case.
 */
export async function startBattery(): Promise<Battery> {
  // One connection per subgraph: every request of every district shares it (the "tiny pool").
  const statements: Battery['statements'] = [];
  const platform = await startTestPlatform({ poolSize: 1, districtStatusTtlMs: 0 }, (service, sql) => statements.push({ service, sql }));
  afterAll(async () => {
    await platform.stop();
    const failures = tally.failed > tally.leaks ? `, ${tally.failed - tally.leaks} other failures` : '';
    console.log(`isolation: ${tally.attacks} attacks, ${tally.leaks} leaks${failures}`);
  });
  const signer = await createTenantContextSigner(platform.keys.context.privateJwk);
  await auditDemoDistricts(platform);
  const tables = await discoverTenantTables(platform);
  const names = tables.map((t) => t.name);
  if (new Set(names).size !== names.length) throw new Error(`tenant table names repeat across services: ${names.join(', ')}`);
  const rows = await readTenantRows(platform, tables);
  const others = DEMO_DISTRICTS.filter((d) => d.tenantId !== NORTH);
  foreignMarkers = [
    ...others.flatMap((d) => [
      d.tenantId,
      d.name,
      d.slug,
      d.slug
        .split('-')
        .map((w) => w[0]!.toUpperCase() + w.slice(1))
        .join(' '),
    ]),
    ...others.flatMap((d) => idsOf(Object.values(rows[d.tenantId] ?? {}).flat())),
  ];
  return {
    platform,
    tables,
    foreignKeys: await discoverForeignKeys(platform),
    rows,
    keys: (tenantId, table) => rows[tenantId]?.[table] ?? [],
    sign: (tenantId, audience) => signer({ tenantId, subject: 'battery', requestId: randomUUID() } satisfies TenantContext, audience),
    statements,
  };
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
