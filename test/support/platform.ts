/** The one helper every test uses to start the whole platform on the run's PostgreSQL, and to talk to it. */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg, { escapeIdentifier } from 'pg';
import { pino } from 'pino';
import { inject } from 'vitest';
import { readConfig, type PlatformConfig } from '../../config/config.ts';
import { issueDevToken, type DevTokenOptions } from '../../dev/keys.ts';
import { startPlatform, type Platform } from '../../dev/platform.ts';
import { DEMO_DISTRICTS } from '../../dev/seed.ts';
import { ownerRoleName } from '../../database/database.ts';

export type DemoSlug = (typeof DEMO_DISTRICTS)[number]['slug'];
export const demo = (slug: DemoSlug) => DEMO_DISTRICTS.find((d) => d.slug === slug)!;

export interface GraphQLResult<T = any> {
  status: number;
  body: { data?: T; errors?: { message: string; extensions?: { code?: string } }[] };
  text: string;
}

export interface TestPlatform extends Platform {
  adminUrl: string;
  /** A valid development token for a demo district or any tenant id. */
  token(tenant: DemoSlug | string, options?: Partial<DevTokenOptions>): Promise<string>;
  /** POSTs an operation to a URL (the gateway by default) as JSON. */
  graphql<T = any>(
    request: { query: string; variables?: unknown },
    options?: { token?: string; headers?: Record<string, string>; url?: string },
  ): Promise<GraphQLResult<T>>;
  /** As `graphql`, with a fresh token for `tenant`. */
  as<T = any>(tenant: DemoSlug | string, query: string, variables?: unknown): Promise<GraphQLResult<T>>;
  /** A client connected as a given URL's role; closed by stop(). */
  connect(url: string): Promise<pg.Client>;
}

export async function startTestPlatform(
  overrides: Partial<PlatformConfig> = {},
  onQuery?: (service: string, sql: string) => void,
): Promise<TestPlatform> {
  const adminUrl = inject('adminUrl');
  const prefix = `t_${randomBytes(4).toString('hex')}`;
  const dataDir = await mkdtemp(join(tmpdir(), 'k12-test-'));
  const base = readConfig({});
  const config: PlatformConfig = {
    ...base,
    databaseUrl: adminUrl,
    dataDir,
    prefix,
    gatewayPort: 0,
    subgraphPorts: Object.fromEntries(Object.keys(base.subgraphPorts).map((name) => [name, 0])),
    // Tests send their districts' largest operations back to back; the cost rate is tested where it is the subject.
    districtRate: { ...base.districtRate, costPerSecond: 0 },
    ...overrides,
  };
  const platform = await startPlatform({ config, logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }), onQuery });
  const clients: pg.Client[] = [];

  const graphql: TestPlatform['graphql'] = async (request, options = {}) => {
    const response = await fetch(options.url ?? platform.gateway.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
        ...options.headers,
      },
      body: JSON.stringify(request),
    });
    const text = await response.text();
    return { status: response.status, body: JSON.parse(text), text };
  };
  const token: TestPlatform['token'] = (tenant, options = {}) =>
    issueDevToken(platform.keys, {
      tenantId: DEMO_DISTRICTS.find((d) => d.slug === tenant)?.tenantId ?? tenant,
      tenantClaim: config.jwt.tenantClaim,
      ...options,
    });

  return {
    ...platform,
    adminUrl,
    token,
    graphql,
    as: async (tenant, query, variables) => graphql({ query, variables }, { token: await token(tenant) }),
    async connect(url) {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      clients.push(client);
      return client;
    },
    async stop() {
      await Promise.all(clients.map((c) => c.end().catch(() => {})));
      await platform.stop();
      await dropPlatformDatabases(
        adminUrl,
        prefix,
        Object.values(platform.databases).map((db) => [db.database, db.appRole]),
      );
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

async function dropPlatformDatabases(adminUrl: string, prefix: string, databases: [string, string][]): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    for (const [database, role] of databases) {
      await client.query(`drop database if exists ${escapeIdentifier(database)} with (force)`);
      await client.query(`drop role if exists ${escapeIdentifier(role)}`);
    }
    await client.query(`drop role if exists ${escapeIdentifier(ownerRoleName(prefix))}`);
  } finally {
    await client.end();
  }
}
