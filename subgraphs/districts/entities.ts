import { defineEntity, p } from '@mikro-orm/postgresql';
import { tenantIdProperty, tenantKey, tenantTable } from '../../tenancy/tenant-table.ts';
import { DISTRICT_STATUSES } from '../../tenancy/district-status.ts';

/** The tenant itself: its key is the tenant id. */
export const District = defineEntity({
  name: 'District',
  ...tenantTable,
  properties: {
    tenantId: tenantIdProperty(),
    name: p.string().length(200),
    slug: p.string().length(100),
    status: p.enum([...DISTRICT_STATUSES]).default('active'),
    createdAt: p
      .datetime()
      .defaultRaw('now()')
      .onCreate(() => new Date()),
  },
});

export const School = defineEntity({
  name: 'School',
  ...tenantTable,
  properties: {
    ...tenantKey(),
    name: p.string().length(200),
    /** The district's own integer id before consolidation (NULL for rows created here): auditors name rows by it. */
    legacyId: p.integer().nullable(),
    createdAt: p
      .datetime()
      .defaultRaw('now()')
      .onCreate(() => new Date()),
  },
});

/**
 * The district's audit trail: one row per lifecycle action of the operator CLI (`npm run district`). Written and
 * read only by the owner role through tools/district/audit.ts; no SDL exposes it and the application role reads
 * it only under its district's tenant context, like every tenant table.
 */
export const DistrictEvent = defineEntity({
  name: 'DistrictEvent',
  tableName: 'district_event',
  ...tenantTable,
  properties: {
    ...tenantKey(),
    at: p
      .datetime()
      .defaultRaw('now()')
      .onCreate(() => new Date()),
    action: p.string().length(40),
    actor: p.string().length(200),
    details: p.json<Record<string, unknown>>().default('{}'),
  },
});

export const entities = [District, School, DistrictEvent];
