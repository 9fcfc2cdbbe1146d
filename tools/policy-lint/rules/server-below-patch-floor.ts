import type { PolicyRule } from '../catalog.ts';

/**
 * First fixed minor release per major (server_version_num) for known RLS vulnerabilities:
 * CVE-2024-10976 (policies below subqueries disregard user ID changes): 12.21, 13.17, 14.14, 15.9, 16.5, 17.1;
 * CVE-2023-39418 (MERGE ignores UPDATE/SELECT policies; MERGE exists from 15): 15.4.
 */
const PATCH_FLOORS: { cve: string; fixedIn: Record<number, number> }[] = [
  { cve: 'CVE-2024-10976', fixedIn: { 12: 120021, 13: 130017, 14: 140014, 15: 150009, 16: 160005, 17: 170001 } },
  { cve: 'CVE-2023-39418', fixedIn: { 15: 150004 } },
];
/** Majors older than this get no fixes at all. */
const OLDEST_PATCHED_MAJOR = 12;

const display = (versionNum: number) => `${Math.floor(versionNum / 10000)}.${versionNum % 10000}`;

/** The unfixed vulnerabilities of a server, as one line each (empty when it is at or above every floor). */
export function unpatchedVulnerabilities(versionNum: number): string[] {
  const major = Math.floor(versionNum / 10000);
  if (major < OLDEST_PATCHED_MAJOR)
    return [`PostgreSQL ${major} is out of support and unpatched for ${PATCH_FLOORS.map((f) => f.cve).join(', ')}`];
  return PATCH_FLOORS.flatMap(({ cve, fixedIn }) => {
    const floor = fixedIn[major];
    return floor !== undefined && versionNum < floor
      ? [`PostgreSQL ${display(versionNum)} is below ${display(floor)}, the fix for ${cve}`]
      : [];
  });
}

export const serverBelowPatchFloor: PolicyRule = {
  name: 'server-below-patch-floor',
  rationale: 'Known PostgreSQL bugs let queries bypass or misapply RLS policies until the server runs the fixed minor release.',
  async check({ client }) {
    const { rows } = await client.query<{ server_version_num: string }>('show server_version_num');
    return unpatchedVulnerabilities(Number(rows[0]!.server_version_num)).map((detail) => ({ object: 'server', detail }));
  },
};
