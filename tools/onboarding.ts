/**
 * Registering a district (the tenant) in the directory service (the registry entry with `"directory": true`):
 * the one onboarding path used by consolidation and by the load seeder. Runs as the owner role of the
 * directory database (it creates the tenant row itself, which no tenant context may do for another district).
 */
import type pg from 'pg';
import { isUuid } from '../tenancy/tenant-context.ts';
import type { DistrictStatus } from '../tenancy/district-status.ts';

export type { DistrictStatus };

export interface DistrictRegistration {
  tenantId: string;
  slug: string;
  name: string;
}

export class RegistrationConflict extends Error {}

/**
 * Inserts the district with `status` when absent. When present, returns it unchanged if slug and name
 * match, and throws RegistrationConflict otherwise (never overwrites another registration).
 */
export async function registerDistrict(
  directoryOwner: pg.ClientBase,
  district: DistrictRegistration,
  status: DistrictStatus,
): Promise<{ created: boolean; status: DistrictStatus }> {
  if (!isUuid(district.tenantId)) throw new Error(`district id must be a UUID: ${district.tenantId}`);
  const inserted = await directoryOwner.query(
    `insert into district (tenant_id, slug, name, status) values ($1, $2, $3, $4) on conflict (tenant_id) do nothing`,
    [district.tenantId, district.slug, district.name, status],
  );
  const { rows } = await directoryOwner.query<{ slug: string; name: string; status: DistrictStatus }>(
    'select slug, name, status from district where tenant_id = $1',
    [district.tenantId],
  );
  const existing = rows[0]!;
  if (existing.slug !== district.slug || existing.name !== district.name) {
    throw new RegistrationConflict(
      `district ${district.tenantId} is already registered as "${existing.slug}" (${existing.name}), not "${district.slug}" (${district.name})`,
    );
  }
  return { created: inserted.rowCount === 1, status: existing.status };
}

export async function setDistrictStatus(directoryOwner: pg.ClientBase, tenantId: string, status: DistrictStatus): Promise<void> {
  await directoryOwner.query('update district set status = $2 where tenant_id = $1', [tenantId, status]);
}
