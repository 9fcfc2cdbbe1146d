/** The load harness on a real platform: the scale seed (onboarding path, COPY, resume), the tokens file, scenarios, and the open-model runner. */
import { createServer, type Server } from 'node:http';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseScenario, requestPlanner, type Scenario, type TokensFile } from '../load/scenarios/scenario.ts';
import { planDistricts } from '../load/seed/plan.ts';
import { seedScaleData } from '../load/seed/seed.ts';
import { buildTokensFile } from '../load/seed/tokens.ts';
import { renderChart } from '../load/runner/chart.ts';
import { SCENARIOS_DIR, runScenario } from '../load/runner/run.ts';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';

const SHAPE = { districts: 4, students: 400, seed: 'harness-test' };
let platform: TestPlatform;
let pools: Record<string, pg.Pool>;

/** The seeded SHAPE and its tokens file, made once by whichever test needs them first (the seed is resumable). */
let tokensReady: Promise<TokensFile> | undefined;
const seededTokens = () =>
  (tokensReady ??= (async () => {
    await seedScaleData(pools, { ...SHAPE, concurrency: 2, progress: false });
    const file = await buildTokensFile(pools, platform.keys, platform.config.jwt.tenantClaim, {
      target: platform.gateway.url,
      expiresIn: '1h',
      all: false,
    });
    file.expiresAt = new Date(Date.now() + 3600_000).toISOString();
    return file;
  })());

/** Removes every row of SHAPE's districts (children first), so a test can seed from nothing whatever ran before it. */
async function unseed(): Promise<void> {
  const tenants = planDistricts(SHAPE).map((d) => d.tenantId);
  const tables: [string, string][] = [
    ['staff', 'section_student'],
    ['staff', 'section'],
    ['staff', 'staff_member'],
    ['students', 'enrollment'],
    ['students', 'student'],
    ['districts', 'school'],
    ['districts', 'district'],
  ];
  for (const [service, table] of tables) await pools[service]!.query(`delete from ${table} where tenant_id = any($1::uuid[])`, [tenants]);
}

const count = async (service: string, table: string, tenantId: string) =>
  Number((await pools[service]!.query<{ n: string }>(`select count(*) as n from ${table} where tenant_id = $1`, [tenantId])).rows[0]!.n);

beforeAll(async () => {
  platform = await startTestPlatform();
  pools = Object.fromEntries(
    Object.entries(platform.databases).map(([s, db]) => [s, new pg.Pool({ connectionString: db.ownerUrl, max: 3 })]),
  );
});
afterAll(async () => {
  await Promise.all(Object.values(pools ?? {}).map((p) => p.end()));
  await platform?.stop();
});

describe('scale seed', () => {
  it('plans skewed district sizes that add up to the requested students', () => {
    const plans = planDistricts({ districts: 500, students: 5_000_000, seed: 'k12-load' });
    expect(plans.reduce((sum, d) => sum + d.students, 0)).toBe(5_000_000);
    expect(plans[0]!.students).toBeGreaterThan(100 * plans.at(-1)!.students);
    expect(new Set(plans.map((d) => d.tenantId)).size).toBe(500);
    expect(() => planDistricts({ districts: 10, students: 5, seed: 'x' })).toThrow(/at least 20 per district/);
  });

  it('registers each district through onboarding and COPYs every row, then resumes only what is missing', async () => {
    const plans = planDistricts(SHAPE);
    await unseed();
    const first = await seedScaleData(pools, { ...SHAPE, concurrency: 2, progress: false });
    expect(first).toMatchObject({ districts: 4, skipped: 0 });
    const big = plans[0]!;
    const { rows } = await pools.districts!.query('select slug, name, status from district where tenant_id = $1', [big.tenantId]);
    expect(rows).toEqual([{ slug: big.slug, name: big.name, status: 'active' }]);
    expect(await count('students', 'student', big.tenantId)).toBe(big.students);
    expect(await count('students', 'enrollment', big.tenantId)).toBe(big.students);
    expect(await count('staff', 'section_student', big.tenantId)).toBe(big.students);
    expect(await count('staff', 'section', big.tenantId)).toBe(big.sections);
    expect(await count('districts', 'school', big.tenantId)).toBe(big.schools);

    // A second run finds everything there; after losing one district's students it redoes only those.
    expect(await seedScaleData(pools, { ...SHAPE, concurrency: 2, progress: false })).toMatchObject({ skipped: 4, rows: 0 });
    await pools.students!.query('delete from student where tenant_id = $1', [big.tenantId]);
    const resumed = await seedScaleData(pools, { ...SHAPE, concurrency: 2, progress: false });
    expect(resumed).toMatchObject({ skipped: 3, rows: 2 * big.students });
    expect(await count('students', 'student', big.tenantId)).toBe(big.students);
  });

  it('writes a tokens file the gateway accepts, largest district first, with sample ids that resolve across subgraphs', async () => {
    const tokens = await seededTokens();
    expect(tokens.districts.map((d) => d.slug)).toEqual(planDistricts(SHAPE).map((d) => d.slug));
    const big = tokens.districts[0]!;
    const { body } = await platform.graphql(
      {
        query: 'query($id: ID!) { district { slug } section(id: $id) { teacher { id } students { id firstName } } }',
        variables: { id: big.samples.sectionId![0] },
      },
      { token: big.token },
    );
    expect(body.errors).toBeUndefined();
    expect(body.data.district.slug).toBe(big.slug);
    expect(body.data.section.students.length).toBeGreaterThan(0);
    expect(body.data.section.students[0].firstName).toEqual(expect.any(String));
  });
});

describe('scenarios', () => {
  it('every shipped scenario file is valid', () => {
    const files = readdirSync(SCENARIOS_DIR).filter((f) => f.endsWith('.json'));
    expect(files).toEqual(
      expect.arrayContaining(['point-lookup.json', 'tenant-page.json', 'cross-subgraph.json', 'mutations.json', 'mixed.json', 'ci.json']),
    );
    for (const file of files) expect(() => parseScenario(JSON.parse(readFileSync(join(SCENARIOS_DIR, file), 'utf8')), file)).not.toThrow();
  });

  it('refuses a scenario with a bad field, naming it', () => {
    const ci = JSON.parse(readFileSync(join(SCENARIOS_DIR, 'ci.json'), 'utf8'));
    expect(() => parseScenario({ ...ci, rate: 0 }, 'x.json')).toThrow('x.json: rate must be a positive number');
    expect(() => parseScenario({ ...ci, mix: { kind: 'hot', district: 'largest' } }, 'x.json')).toThrow('mix.factor');
  });

  it('a hot district gets `factor` times the requests of each other one', async () => {
    const tokens = await seededTokens();
    const scenario = parseScenario({ ...JSON.parse(readFileSync(join(SCENARIOS_DIR, 'noisy-neighbour.json'), 'utf8')), districts: 4 });
    let seed = 1;
    const next = requestPlanner(scenario, tokens, () => (seed = (seed * 16807) % 2147483647) / 2147483647);
    const seen = new Map<string, number>();
    for (let i = 0; i < 13_000; i++) {
      const slug = next().district.slug;
      seen.set(slug, (seen.get(slug) ?? 0) + 1);
    }
    const hot = seen.get(tokens.districts[0]!.slug)!;
    expect(tokens.districts).toHaveLength(SHAPE.districts);
    for (const other of tokens.districts.slice(1)) expect(hot / seen.get(other.slug)!).toBeGreaterThan(8);
  });
});

describe('Node runner', () => {
  it('runs a scenario against the gateway: every request answered, figures per district and operation', async () => {
    const tokens = await seededTokens();
    const ci = parseScenario(JSON.parse(readFileSync(join(SCENARIOS_DIR, 'ci.json'), 'utf8')));
    const report = await runScenario({ ...ci, rate: 20, durationSeconds: 2 }, tokens);
    expect(report.requests).toBe(40);
    expect(report.errors).toEqual({ total: 0, rate: 0, byKind: {} });
    expect(report.byDistrict.length).toBeGreaterThan(1);
    expect(report.byOperation.map((o) => o.operation)).toContain('sectionRoster');
    expect(report.latencyMs.p50).toBeGreaterThan(0);
    expect(report.latencyMs.p95).toBeGreaterThanOrEqual(report.latencyMs.p50);
    const svg = renderChart(report, ci.thresholds);
    expect(svg).toMatch(/^<\?xml[^]*<svg[^]*<polyline[^]*<rect[^]*<\/svg>\n$/);
    expect(svg).not.toMatch(/NaN|undefined/);
  });

  describe('against a deliberately slow and faulty server', () => {
    let server: Server;
    let url: string;
    /** Requests the server holds at once, and the most it has held. */
    let open = 0;
    let mostOpen = 0;
    beforeAll(async () => {
      // 300 ms per answer; district "load-err" gets a 500, "load-gql" a GraphQL error.
      server = createServer((req, res) => {
        const auth = req.headers.authorization ?? '';
        mostOpen = Math.max(mostOpen, ++open);
        res.on('finish', () => open--);
        setTimeout(() => {
          if (auth.endsWith('err')) return res.writeHead(500).end('{}');
          res.setHeader('content-type', 'application/json');
          res.end(auth.endsWith('gql') ? '{"errors":[{"message":"no","extensions":{"code":"FORBIDDEN"}}]}' : '{"data":{"ok":true}}');
        }, 300);
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(server.address() as { port: number }).port}/graphql`;
    });
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

    const fake = (slug: string) => ({ tenantId: '00000000-0000-4000-8000-000000000000', slug, students: 1, token: slug, samples: {} });
    const scenario: Scenario = {
      name: 'slow',
      operations: [{ name: 'ping', weight: 1, query: '{ ok }' }],
      mix: { kind: 'uniform' },
      rate: 50,
      durationSeconds: 1,
      thresholds: { p95Ms: 100, errorRate: 0 },
    };

    it('keeps sending whatever the latency (open model) and fails the latency threshold', async () => {
      mostOpen = 0;
      const report = await runScenario(scenario, { target: url, issuedAt: '', expiresAt: '', districts: [fake('load-ok')] });
      expect(report.requests).toBe(50);
      // 50 arrivals in 1 s against 300 ms answers: about 15 are open at once. A closed loop would hold one.
      expect(mostOpen).toBeGreaterThanOrEqual(10);
      expect(report.latencyMs.p50).toBeGreaterThanOrEqual(295);
      expect(report.thresholds.find((t) => t.name === 'p95 (ms)')).toMatchObject({ passed: false });
      expect(report.passed).toBe(false);
    });

    it('counts errors by kind', async () => {
      const report = await runScenario(
        { ...scenario, rate: 30 },
        { target: url, issuedAt: '', expiresAt: '', districts: [fake('load-err'), fake('load-gql')] },
      );
      expect(report.errors.total).toBe(30);
      expect(Object.keys(report.errors.byKind).sort()).toEqual(['graphql_FORBIDDEN', 'http_500']);
      expect(report.byDistrict.find((d) => d.district === 'load-err')!.errors).toBeGreaterThan(0);
    });
  });
});
