/**
 * One district attacks the platform while another works. North Valley (holding one valid token, and a tenant
 * context the gateway's key signed, for the attacks straight at a subgraph) sends the fan-out at every depth,
 * 5,000 aliases, batches, 1 MB of variables, deep fragments, a fragment bomb, fragment cycles and a flood of
 * 300 concurrent requests, starting an attack at most every 250 ms (with a short pause after every ten);
 * South Ridge sends one light request every 100 ms throughout. Every attack must be
 * refused or served within the limits, the platform must stay up (no outage), South Ridge must see no error
 * and keep its p95 under 3× its quiet p95, and the process (gateway, subgraphs and this test: one process) must
 * stay under a memory bound. The closing line is printed in CI's output.
 */
import { execFile } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_DISTRICT_CONCURRENCY } from '../../config/config.ts';
import { demo, startTestPlatform, type GraphQLResult, type TestPlatform } from '../support/platform.ts';
import { LIMITS, deepFragments, directCaller, expectLimitRefusal, expectServed, fanOut, fragmentBomb } from './support.ts';

/** Growth of the process's resident memory over the attacks (measured before them) that counts as a failure. */
const RSS_GROWTH_BOUND_MB = 300;
/**
 * Quiet samples are taken before the attacks, after them, and in a pause after every 10 attacks (once what those
 * left running has settled), so that the machine's own ups and downs show in the quiet and the attack samples alike.
 */
const QUIET_SECONDS_BEFORE = 6;
const QUIET_SECONDS_AFTER = 4;
const ATTACKS_BETWEEN_PAUSES = 10;
const PAUSE_MS = 1500;
const SETTLE_MS = 300;
const SAMPLE_INTERVAL_MS = 100;
/** The attacker sends its attacks one after another, starting one at most every this often (4 a second). */
const ATTACK_INTERVAL_MS = 250;
const FLOOD = 300;

const north = demo('north-valley').tenantId;
let platform: TestPlatform;
let direct: Awaited<ReturnType<typeof directCaller>>;
let northToken: string;
let schoolIds: string[] = [];

const tally = { attacks: 0, outages: 0, lastStart: 0, current: '' };
/** The other district's slowest requests during the attacks, with the attack under way when each was sent. */
const slowest: { ms: number; attack: string }[] = [];
const other = {
  quiet: [] as number[],
  abuse: [] as number[],
  errors: [] as string[],
  phase: 'quiet' as 'quiet' | 'abuse' | 'settle' | 'done',
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const memory = { baselineMb: 0, peakMb: 0 };
let sampler: NodeJS.Timeout | undefined;
let memoryProbe: NodeJS.Timeout | undefined;
const inFlight = new Set<Promise<void>>();

const run = promisify(execFile);
const rssMb = () => process.memoryUsage().rss / 2 ** 20;
const p95 = (values: number[]) => [...values].sort((a, b) => a - b)[Math.ceil(values.length * 0.95) - 1]!;

async function post(body: string, token = northToken): Promise<GraphQLResult & { headers: Headers }> {
  const response = await fetch(platform.gateway.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body,
  });
  const text = await response.text();
  return { status: response.status, body: JSON.parse(text), text, headers: response.headers };
}
const asNorth = (query: string, variables?: unknown) => post(JSON.stringify({ query, variables }));
const schoolRepresentations = () => [{ __typename: 'School', id: schoolIds[0] }];

/** South Ridge's light request, open model: one every 100 ms whatever happened to the previous ones. */
async function startOtherDistrict(): Promise<void> {
  const token = await platform.token('south-ridge');
  const { body } = await post(JSON.stringify({ query: '{ students(first: 5) { edges { node { id } } } }' }), token);
  const ids: string[] = body.data.students.edges.map((e: { node: { id: string } }) => e.node.id);
  expect(ids).toHaveLength(5);
  const light = (i: number) =>
    JSON.stringify({ query: 'query ($id: ID!) { student(id: $id) { id firstName lastName } }', variables: { id: ids[i % ids.length] } });
  let sent = 0;
  sampler = setInterval(() => {
    const phase = other.phase;
    if (phase === 'done' || phase === 'settle') return;
    const during = tally.current;
    const started = performance.now();
    const request = post(light(sent++), token)
      .then((result) => {
        const ms = performance.now() - started;
        if (result.status !== 200 || result.body.errors || !result.body.data?.student)
          other.errors.push(`${result.status} ${result.text.slice(0, 200)}`);
        else other[phase].push(ms);
        if (phase === 'abuse') slowest.push({ ms, attack: during });
      })
      .catch((error: Error) => void other.errors.push(error.message))
      .finally(() => inFlight.delete(request));
    inFlight.add(request);
  }, SAMPLE_INTERVAL_MS);
}

/** A pause in the attacks: what they left running settles (not sampled), then quiet samples. */
async function quietPause(): Promise<void> {
  other.phase = 'settle';
  await Promise.allSettled([...inFlight]);
  await sleep(SETTLE_MS);
  other.phase = 'quiet';
  await sleep(PAUSE_MS);
  other.phase = 'abuse';
}

/** One attack: counted, and followed by a readiness check of the whole platform (a failure there is an outage). */
function attack(name: string, run: () => Promise<void>): void {
  it(name, async () => {
    await sleep(tally.lastStart + ATTACK_INTERVAL_MS - performance.now());
    if (tally.attacks > 0 && tally.attacks % ATTACKS_BETWEEN_PAUSES === 0) await quietPause();
    tally.lastStart = performance.now();
    tally.attacks++;
    tally.current = name;
    try {
      await run();
    } catch (error) {
      // A refused connection or a reset is the platform going down, whatever the assertion said.
      if (
        /fetch failed|ECONNREFUSED|ECONNRESET|socket/i.test(
          String((error as Error)?.message ?? error) +
            String((error as { cause?: { code?: string } })?.cause?.code ?? '') +
            String((error as { cause?: { message?: string } })?.cause?.message ?? ''),
        )
      )
        tally.outages++;
      throw error;
    } finally {
      const ready = await fetch(new URL('/health/ready', platform.gateway.url)).then(
        (r) => r.ok,
        () => false,
      );
      if (!ready) tally.outages++;
    }
  });
}

function servedOrRefused(result: GraphQLResult, refusal: RegExp): 'served' | 'refused' {
  if (result.status === 200) {
    expectServed(result);
    return 'served';
  }
  expectLimitRefusal(result, refusal);
  return 'refused';
}

beforeAll(async () => {
  platform = await startTestPlatform();
  direct = await directCaller(platform);
  northToken = await platform.token('north-valley');
  const { body } = await asNorth('{ schools { id } }');
  schoolIds = body.data.schools.map((s: { id: string }) => s.id);
  expect(schoolIds.length).toBeGreaterThan(1);
});

afterAll(async () => {
  other.phase = 'done';
  clearInterval(sampler);
  clearInterval(memoryProbe);
  await Promise.allSettled([...inFlight]);
  await platform?.stop();
  const quiet = other.quiet.length ? p95(other.quiet).toFixed(1) : '?';
  const abuse = other.abuse.length ? p95(other.abuse).toFixed(1) : '?';
  console.log(
    `abuse: other district ${other.errors.length} errors; rss +${(memory.peakMb - memory.baselineMb).toFixed(0)} MB over the attacks (bound ${RSS_GROWTH_BOUND_MB} MB)`,
  );
  console.log(`abuse: ${tally.attacks} attacks, ${tally.outages} outages, other district p95 ${abuse} ms (quiet ${quiet} ms)`);
});

describe('one district attacks while another works', () => {
  it(`the other district's quiet latency (${QUIET_SECONDS_BEFORE} s, one request every ${SAMPLE_INTERVAL_MS} ms)`, async () => {
    // Warm every path the attacks and the other district take (plans, caches, connections).
    for (let i = 0; i < 5; i++) {
      expectServed(await asNorth('{ district { name } sections { name students { firstName } } }'));
      expectServed(await asNorth(fanOut(3, 'schools')));
    }
    await startOtherDistrict();
    await sleep(QUIET_SECONDS_BEFORE * 1000);
    expect(other.quiet.length).toBeGreaterThanOrEqual(QUIET_SECONDS_BEFORE * 5);
    other.phase = 'abuse';
    memory.baselineMb = memory.peakMb = rssMb();
    memoryProbe = setInterval(() => (memory.peakMb = Math.max(memory.peakMb, rssMb())), 50);
  });

  for (let levels = 1; levels <= 20; levels++) {
    attack(`fan-out ${levels} levels through the gateway`, async () => {
      const outcome = servedOrRefused(await asNorth(fanOut(levels, 'schools')), /^(Query depth|Query cost) limit of \d+ exceeded/);
      if (levels + 1 > LIMITS.maxDepth) expect(outcome).toBe('refused');
    });
    attack(`fan-out ${levels} levels straight at the students subgraph`, async () => {
      const result = await direct('students', north, { query: fanOut(levels, '_entities'), variables: { r: schoolRepresentations() } });
      const outcome = servedOrRefused(result, /^(Query depth|Query cost) limit of \d+ exceeded/);
      if (levels + 1 > LIMITS.maxDepth) expect(outcome).toBe('refused');
    });
  }

  const fiveThousandAliases = (field: string) => `{ ${Array.from({ length: 5000 }, (_, i) => `a${i}: ${field}`).join(' ')} }`;
  attack('5,000 aliases through the gateway', async () => {
    expectLimitRefusal(await asNorth(fiveThousandAliases('district { id }')), /^Token limit of \d+ exceeded/, LIMITS.maxTokens);
  });
  attack('5,000 aliases straight at a subgraph', async () => {
    expectLimitRefusal(
      await direct('districts', north, { query: fiveThousandAliases('district { id }') }),
      /^Token limit of \d+ exceeded/,
      LIMITS.maxTokens * 2,
    );
  });

  const batch = JSON.stringify(Array.from({ length: FLOOD }, () => ({ query: '{ sections { name students { firstName } } }' })));
  attack(`a batch of ${FLOOD} operations through the gateway`, async () => {
    const result = await post(batch);
    expect(result.status).toBe(400);
    expect(result.body.errors).toEqual([{ message: 'Operation batching disabled.', extensions: { code: 'BAD_REQUEST' } }]);
  });
  attack(`a batch of ${FLOOD} operations straight at a subgraph`, async () => {
    const result = await direct('staff', north, batch);
    expect(result.status).toBe(400);
    expect(result.body.errors?.[0]?.extensions?.code).toBe('BAD_REQUEST');
  });

  attack('1 MB of variables through the gateway', async () => {
    const result = await asNorth('query ($after: String) { district { id } students(first: 1, after: $after) { edges { node { id } } } }', {
      after: 'x'.repeat(1_000_000),
    });
    expect(result.status).toBeLessThan(500);
    expect(result.text.length).toBeLessThan(2000);
    expect(result.body.errors?.map((e) => e.extensions?.code)).toEqual(['BAD_USER_INPUT']);
  });
  attack('1 MB of _entities representations straight at a subgraph', async () => {
    const representations = Array.from({ length: 14_000 }, (_, i) => ({
      __typename: 'Student',
      id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    }));
    const query =
      'query ($r: [_Any!]!) { _entities(representations: $r) { ... on Student { id firstName lastName grade dateOfBirth school { id } } } }';
    expectLimitRefusal(
      await direct('students', north, { query, variables: { r: representations } }),
      /^Query cost limit of \d+ exceeded/,
      LIMITS.maxCost * 2,
    );
  });

  attack('20 levels hidden in fragments', async () => {
    expectLimitRefusal(await asNorth(deepFragments(20)), /^Query depth limit of \d+ exceeded, found 21\./, LIMITS.maxDepth);
  });
  attack('a fragment bomb (2^59 fields when expanded) through the gateway', async () => {
    expectLimitRefusal(await asNorth(fragmentBomb(60)), /^Root fields limit of \d+ exceeded/, LIMITS.maxRootFields);
  });
  attack('a fragment bomb straight at a subgraph', async () => {
    expectLimitRefusal(
      await direct('districts', north, { query: fragmentBomb(60) }),
      /^Root fields limit of \d+ exceeded/,
      LIMITS.maxRootFields,
    );
  });
  attack('fragment cycles through the gateway', async () => {
    const result = await asNorth(
      '{ schools { ...A } } fragment A on School { students { ...B } } fragment B on Student { school { ...A } }',
    );
    expect(result.status).toBe(400);
    expect(result.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });
  attack('fragment cycles straight at a subgraph', async () => {
    const result = await direct('students', north, {
      query:
        'query ($r: [_Any!]!) { _entities(representations: $r) { ...A } } fragment A on School { students { ...B } } fragment B on Student { school { ...A } }',
      variables: { r: schoolRepresentations() },
    });
    expect(result.status).toBe(400);
    expect(result.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });

  attack(`a flood of ${FLOOD} concurrent requests from one district (sent by a process of its own)`, async () => {
    const { stdout } = await run(process.execPath, [fileURLToPath(new URL('./flood.ts', import.meta.url))], {
      env: {
        ...process.env,
        FLOOD_URL: platform.gateway.url,
        FLOOD_TOKEN: northToken,
        FLOOD_BODY: JSON.stringify({ query: '{ students(first: 20) { edges { node { id firstName lastName grade } } } }' }),
        FLOOD_COUNT: String(FLOOD),
      },
      timeout: 120_000,
    });
    const results = JSON.parse(stdout) as {
      status: number;
      retryAfter?: string | null;
      code?: string | null;
      hasData?: boolean;
      error?: string;
    }[];
    expect(results).toHaveLength(FLOOD);
    const served = results.filter((r) => r.status === 200);
    const turnedAway = results.filter((r) => r.status === 429);
    expect(served.length + turnedAway.length, JSON.stringify(results.filter((r) => r.status !== 200 && r.status !== 429).slice(0, 3))).toBe(
      FLOOD,
    );
    for (const result of served) expect(result).toMatchObject({ code: null, hasData: true });
    expect(served.length).toBeGreaterThanOrEqual(DEFAULT_DISTRICT_CONCURRENCY.maxInFlight);
    expect(turnedAway.length).toBeGreaterThan(0);
    // Past the district's rate (DISTRICT_RATE_*) or its running and waiting requests: refused at once, either way.
    for (const result of turnedAway) {
      expect(result.retryAfter).toBe('1');
      expect(['DISTRICT_RATE_LIMITED', 'DISTRICT_CONCURRENCY_LIMITED']).toContain(result.code);
    }
    console.log(`flood: ${served.length} served, ${turnedAway.length} turned away with 429`);
  });

  it('the other district saw no error and kept its p95 under 3× quiet; memory stayed bounded; no outage', async () => {
    clearInterval(memoryProbe);
    other.phase = 'settle';
    await Promise.allSettled([...inFlight]);
    await sleep(SETTLE_MS);
    other.phase = 'quiet';
    await sleep(QUIET_SECONDS_AFTER * 1000);
    other.phase = 'done';
    await Promise.allSettled([...inFlight]);
    expect(tally.attacks).toBeGreaterThanOrEqual(50);
    expect(tally.outages).toBe(0);
    expect(other.errors).toEqual([]);
    expect(other.abuse.length).toBeGreaterThanOrEqual(10);
    const worst = slowest
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 5)
      .map((s) => `${s.ms.toFixed(0)} ms during "${s.attack}"`);
    expect(p95(other.abuse), `quiet p95 ${p95(other.quiet).toFixed(1)} ms; slowest: ${worst.join('; ')}`).toBeLessThan(
      3 * p95(other.quiet),
    );
    expect(memory.peakMb - memory.baselineMb).toBeLessThan(RSS_GROWTH_BOUND_MB);
  });
});
