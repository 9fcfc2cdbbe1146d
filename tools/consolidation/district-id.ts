/** A legacy district's tenant id: a UUID v5 of its slug, so every run and every tool derives the same one. */
import { createHash } from 'node:crypto';

/** Namespace of legacy district slugs (fixed once; changing it would re-key every consolidated district). */
const DISTRICT_NAMESPACE = 'b7e0c2a4-5d1f-4e8a-9c3b-6f2d1a0e9b57';

export function districtTenantId(slug: string): string {
  const hash = createHash('sha1')
    .update(Buffer.from(DISTRICT_NAMESPACE.replaceAll('-', ''), 'hex'))
    .update(slug, 'utf8')
    .digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
