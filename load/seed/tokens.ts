/**
 * `npm run load:tokens -- [--out load/out/tokens.json]`: the tokens file both runners read, for the
 * platform configured by the environment (same variables as `npm start`): the gateway URL, every seeded
 * load district (largest first) with its student count, a development token, and sample ids to fill
 * scenario variables. Reads the service databases as their owners; works while the platform runs.
 */
import '../../config/node-version.ts';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { Command } from 'commander';
import pg from 'pg';
import { issueDevToken, loadOrCreateKeys } from '../../dev/keys.ts';
import type { DistrictTarget, TokensFile } from '../scenarios/scenario.ts';
import { directoryService, serviceOwning } from '../../config/registry.ts';
import { openServiceDatabases } from './databases.ts';
import { LOAD_SLUG_PREFIX } from './plan.ts';

export const DEFAULT_TOKENS_FILE = 'load/out/tokens.json';
const SAMPLES_PER_DISTRICT = 50;

/**
 * Sample queries by variable name, each on a table (run in the database of the service that holds it); each
 * takes the tenant id as $1 and a limit as $2 (owner role: no RLS).
 */
const SAMPLE_QUERIES: Record<string, [table: string, sql: string]> = {
  studentId: ['student', 'select id from student where tenant_id = $1 order by id limit $2'],
  schoolId: ['school', 'select id from school where tenant_id = $1 order by id limit $2'],
  teacherId: ['staff_member', "select id from staff_member where tenant_id = $1 and role = 'teacher' order by id limit $2"],
  sectionId: ['section', 'select id from section where tenant_id = $1 order by id limit $2'],
};

type Queryable = pg.ClientBase | pg.Pool;

/** The client of the service that holds `table`. */
function clientFor(clients: Record<string, Queryable>, service: string): Queryable {
  const client = clients[service];
  if (!client) throw new Error(`no connection to the ${service} service database`);
  return client;
}

export interface TokensOptions {
  target: string;
  expiresIn: string;
  /** Every active district, not only the load districts (slug `load-…`). */
  all: boolean;
}

/** `clients`: an owner-role connection per registered service, by service name. */
export async function buildTokensFile(
  clients: Record<string, Queryable>,
  keys: Parameters<typeof issueDevToken>[0],
  tenantClaim: string,
  options: TokensOptions,
): Promise<TokensFile> {
  const { rows: districts } = await clientFor(clients, directoryService().name).query<{ tenant_id: string; slug: string }>(
    `select tenant_id, slug from district where status = 'active' and ($1 or starts_with(slug, $2)) order by slug`,
    [options.all, LOAD_SLUG_PREFIX],
  );
  if (districts.length === 0) throw new Error('no active load districts: run npm run load:seed first (or pass --all)');
  const { rows: counts } = await clientFor(clients, serviceOwning('student').name).query<{ tenant_id: string; students: string }>(
    'select tenant_id, count(*) as students from student where tenant_id = any($1::uuid[]) group by tenant_id',
    [districts.map((d) => d.tenant_id)],
  );
  const studentsOf = new Map(counts.map((c) => [c.tenant_id, Number(c.students)]));
  const targets: DistrictTarget[] = [];
  for (const district of districts) {
    const samples: Record<string, string[]> = {};
    for (const [name, [table, sql]] of Object.entries(SAMPLE_QUERIES)) {
      samples[name] = (
        await clientFor(clients, serviceOwning(table).name).query<{ id: string }>(sql, [district.tenant_id, SAMPLES_PER_DISTRICT])
      ).rows.map((r) => r.id);
    }
    const token = await issueDevToken(keys, {
      tenantId: district.tenant_id,
      subject: `load-${district.slug}`,
      tenantClaim,
      expiresIn: options.expiresIn,
    });
    targets.push({ tenantId: district.tenant_id, slug: district.slug, students: studentsOf.get(district.tenant_id) ?? 0, token, samples });
  }
  // Largest first, so a scenario's `districts: N` takes the N largest.
  targets.sort((a, b) => b.students - a.students || a.slug.localeCompare(b.slug));
  const issuedAt = new Date();
  return { target: options.target, issuedAt: issuedAt.toISOString(), expiresAt: '', districts: targets };
}

async function main() {
  const program = new Command('load:tokens')
    .description('Write the tokens file for the configured platform (gateway URL, districts, tokens, sample ids)')
    .option('--out <file>', 'where to write it', DEFAULT_TOKENS_FILE)
    .option('--target <url>', 'the gateway URL the runners call (default: from HOST and GATEWAY_PORT)')
    .option('--expires-in <span>', 'token lifetime, e.g. 2h', '12h')
    .option('--all', 'every active district, not only the load districts', false)
    .parse();
  const options = program.opts<{ out: string; target?: string; expiresIn: string; all: boolean }>();
  if (!/^\d+[smhd]$/.test(options.expiresIn)) program.error('--expires-in must look like 30m, 2h or 1d');

  const databases = await openServiceDatabases();
  const { config } = databases;
  if (config.jwt.jwksUrl || config.jwt.jwksFile)
    program.error(
      'the gateway is configured for an external issuer (JWKS_URL/JWKS_FILE): write the tokens file from that issuer (docs/load-testing.md)',
    );
  const clients: Record<string, pg.Client> = {};
  try {
    for (const [service, db] of Object.entries(databases.byService)) {
      const client = new pg.Client({ connectionString: db.ownerUrl });
      await client.connect();
      clients[service] = client;
    }
    const target = options.target ?? `http://${config.localHost}:${config.gatewayPort}/graphql`;
    if (!URL.canParse(target)) program.error('--target must be a URL');
    const tokens = await buildTokensFile(clients, await loadOrCreateKeys(config.dataDir), config.jwt.tenantClaim, {
      target,
      expiresIn: options.expiresIn,
      all: options.all,
    });
    const seconds =
      Number(options.expiresIn.slice(0, -1)) * { s: 1, m: 60, h: 3600, d: 86400 }[options.expiresIn.at(-1) as 's' | 'm' | 'h' | 'd'];
    tokens.expiresAt = new Date(Date.parse(tokens.issuedAt) + seconds * 1000).toISOString();
    const out = resolve(options.out);
    await mkdir(dirname(out), { recursive: true });
    // Tokens are credentials for the development issuer: readable by this user only.
    await writeFile(out, JSON.stringify(tokens, null, 1), { mode: 0o600 });
    console.log(`wrote ${tokens.districts.length} districts for ${target} to ${options.out} (tokens expire ${tokens.expiresAt})`);
  } finally {
    await Promise.all(Object.values(clients).map((c) => c.end().catch(() => {})));
    await databases.close();
  }
}

if (import.meta.main) {
  main().catch((error: unknown) => {
    console.error(`load:tokens failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  });
}
