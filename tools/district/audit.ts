/**
 * The district audit trail: `district_event` in the directory database, one row per lifecycle action of the
 * operator CLI, written and read as the directory database's owner (an explicit `tenant_id`, past RLS).
 */
import { userInfo } from 'node:os';
import type pg from 'pg';
import { directoryDatabase, withClient } from '../operator-cli.ts';
import { DISTRICT_AUDIT_TABLE, type ServiceDatabase } from '../../database/database.ts';
import { isUuid } from '../../tenancy/tenant-context.ts';

/**
 * The audit trail's table. It outlives the district: export, offboard and restore leave it alone, like the
 * directory's tombstone (export-catalog.ts). The application role holds no privilege on it (database/database.ts).
 */
export const AUDIT_TABLE = DISTRICT_AUDIT_TABLE;

export interface DistrictEventRow {
  id: string;
  at: string;
  action: string;
  actor: string;
  details: Record<string, unknown>;
}

/** `--actor` when given, otherwise the operating-system user running the CLI. */
export function operatorName(actor?: string): string {
  const name = actor?.trim() || userInfo().username;
  if (name.length > 200) throw new Error('actor: at most 200 characters');
  return name;
}

/** Appends one event; call it in the transaction that makes the change it records. */
export async function recordDistrictEvent(
  directoryOwner: pg.ClientBase,
  tenantId: string,
  action: string,
  details: Record<string, unknown> = {},
  actor = operatorName(),
): Promise<void> {
  if (!isUuid(tenantId)) throw new Error(`district id must be a UUID: ${tenantId}`);
  await directoryOwner.query('insert into district_event (tenant_id, action, actor, details) values ($1, $2, $3, $4)', [
    tenantId,
    action,
    actor,
    JSON.stringify(details),
  ]);
}

/** The district's latest events, newest first. */
export async function districtEvents(directoryOwner: pg.ClientBase, tenantId: string, limit = 20): Promise<DistrictEventRow[]> {
  const { rows } = await directoryOwner.query<{ id: string; at: Date; action: string; actor: string; details: Record<string, unknown> }>(
    'select id, at, action, actor, details from district_event where tenant_id = $1 order by at desc, id limit $2',
    [tenantId, limit],
  );
  return rows.map((row) => ({ ...row, at: row.at.toISOString() }));
}

/** Appends one event on a connection of its own to the directory database (for commands that span every database). */
export async function recordDistrictEventAsOwner(
  databases: ServiceDatabase[],
  tenantId: string,
  action: string,
  details: Record<string, unknown>,
): Promise<void> {
  await withClient(directoryDatabase(databases).ownerUrl, (client) => recordDistrictEvent(client, tenantId, action, details));
}
