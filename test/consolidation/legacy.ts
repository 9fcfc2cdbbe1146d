/**
 * Legacy district databases for one test file, on the platform's PostgreSQL server under a unique name
 * prefix (so files running at once never meet), plus the target URLs and a fingerprint of the targets.
 */
import { randomBytes } from 'node:crypto';
import pLimit from 'p-limit';
import pg, { escapeIdentifier } from 'pg';
import { fixtureDistricts, generateLegacyDistrict, type LegacyDistrict } from '../../tools/legacy/fixtures.ts';
import { SourceTemplate } from '../../tools/legacy/source-url.ts';
import { districtTenantId } from '../../tools/consolidation/district-id.ts';
import { SERVICES, TABLES, type Service } from '../../tools/consolidation/tables.ts';
import type { TestPlatform } from '../support/platform.ts';

export interface LegacyFixture {
  template: string;
  source: SourceTemplate;
  districts: (LegacyDistrict & { tenantId: string })[];
  /** A client on one district's legacy database (closed by drop()). */
  connect(slug: string): Promise<pg.Client>;
  drop(): Promise<void>;
}

export async function createLegacyDistricts(adminUrl: string, count: number, students: number): Promise<LegacyFixture> {
  const url = new URL(adminUrl);
  url.pathname = `/t${randomBytes(4).toString('hex')}_district_{slug}`;
  const template = url.toString().replace(encodeURIComponent('{slug}'), '{slug}');
  const source = new SourceTemplate(template);
  const districts = fixtureDistricts(count);
  const limit = pLimit(2);
  await limit.map(districts, (district) => generateLegacyDistrict({ source, students, seed: 'test', replace: false }, district));
  const clients: pg.Client[] = [];
  return {
    template,
    source,
    districts: districts.map((d) => ({ ...d, tenantId: districtTenantId(d.slug) })),
    async connect(slug) {
      const client = new pg.Client({ connectionString: source.urlOf(slug) });
      await client.connect();
      clients.push(client);
      return client;
    },
    async drop() {
      await Promise.all(clients.map((c) => c.end().catch(() => {})));
      const admin = new pg.Client({ connectionString: adminUrl });
      await admin.connect();
      try {
        for (const district of districts)
          await admin.query(`drop database if exists ${escapeIdentifier(source.databaseOf(district.slug))} with (force)`);
      } finally {
        await admin.end();
      }
    },
  };
}

export const ownerTargets = (platform: TestPlatform) =>
  Object.fromEntries(SERVICES.map((s) => [s, platform.databases[s]!.ownerUrl])) as Record<Service, string>;

/** Every consolidated table's rows (as md5 per table), the district registrations and the checkpoints: equal before and after = unchanged. */
export async function targetFingerprint(platform: TestPlatform): Promise<Record<string, string>> {
  const fingerprint: Record<string, string> = {};
  for (const service of SERVICES) {
    const client = await platform.connect(platform.databases[service]!.ownerUrl);
    const tables = [...TABLES.filter((t) => t.service === service).map((t) => t.target), ...(service === 'districts' ? ['district'] : [])];
    for (const table of tables) {
      const { rows } = await client.query(
        `select count(*)::int as n, md5(coalesce(string_agg(t::text, ',' order by t::text), '')) as digest from public.${table} t`,
      );
      fingerprint[`${service}.${table}`] = `${rows[0].n}:${rows[0].digest}`;
    }
    const { rows } = await client.query(
      `select case when to_regclass('consolidation.checkpoint') is null then 'absent' else 'present' end as state`,
    );
    fingerprint[`${service}.checkpoint`] =
      rows[0].state === 'absent'
        ? 'absent'
        : String((await client.query('select count(*)::int as n from consolidation.checkpoint')).rows[0].n);
    await client.end();
  }
  return fingerprint;
}
