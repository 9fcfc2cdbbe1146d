/**
 * How a district's status change reaches every gateway replica when Redis is configured (REDIS_URL): the operator
 * CLI writes the status in the directory database, then publishes the district's id on this channel; each gateway
 * drops what it remembers of that district and asks again. The shared status lives under `districtStatusKey`.
 */
export const DISTRICT_STATUS_CHANNEL = 'k12:district-status';
export const districtStatusKey = (tenantId: string) => `k12:district-status:${tenantId}`;
