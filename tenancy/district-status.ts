/**
 * The lifecycle of a district (the tenant): only an active one is served. Stored in the `district` table of
 * the directory service (the registry entry with `"directory": true`), set by onboarding and consolidation,
 * checked by the gateway.
 */
export const DISTRICT_STATUSES = ['active', 'suspended', 'migrating'] as const;
export type DistrictStatus = (typeof DISTRICT_STATUSES)[number];
