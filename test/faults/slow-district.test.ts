/**
 * A slow district: North Valley asks again and again, from many clients at once, for the largest page the limits
 * allow (99 schools × 100 students, just under the cost limit: about 10,000 students in one answer), while South
 * Ridge sends one light request at a time, 50 ms after the previous answer; North's clients honour Retry-After. The gateway's district limits
 * (gateway/district-limits.ts, production defaults) hold North to its cost rate (one such page per 10 s) and its 2
 * running and 16 waiting requests, and refuse the rest with 429 at once; South is served throughout, without error
 * and only its own district's data, never waiting in North's queue (its p95 below North's p50), and its p95 stays
 * within a generous bound of its own quiet p95 measured in the same test (quiet samples before and after, so the
 * machine's ups and downs weigh on both sides). Ends with `faults: slow district …`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_DISTRICT_CONCURRENCY, readConfig } from '../../config/config.ts';
import { DISTRICT_CONCURRENCY_LIMITED, DISTRICT_RATE_LIMITED } from '../../gateway/district-limits.ts';
import { demo, startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { ownerClient } from '../support/tenant-tables.ts';
import { faultSummaryLine, recordFault } from './support.ts';

const NORTH = demo('north-valley');
const SOUTH = demo('south-ridge');
/** 99 × (1 + 1 + 1 + 100 × 5) + 2 = 49,799: just under the cost limit (50,000), the largest page it allows. */
const SCHOOLS = 99;
const STUDENTS_PER_SCHOOL = 100;
const SLOW = `{ district { name } schools(first: ${SCHOOLS}) { id name students(first: ${STUDENTS_PER_SCHOOL}) { id firstName lastName grade } } }`;
const LIGHT = '{ district { name } students(first: 5) { edges { node { id firstName } } } }';
/** North's clients sending the slow page back to back: more than its running and waiting requests together. */
const NORTH_CLIENTS = DEFAULT_DISTRICT_CONCURRENCY.maxInFlight + DEFAULT_DISTRICT_CONCURRENCY.maxQueued + 8;
const SOUTH_INTERVAL_MS = 50;
const QUIET_BEFORE_MS = 5000;
const SLOW_MS = 8000;
const QUIET_AFTER_MS = 4000;
/** Generous: the machine is shared and noisy; bench figure 11 measures the 20 % goal. */
const P95_BOUND = 3;

let platform: TestPlatform;

interface Sample {
  phase: 'quiet' | 'slow';
  ms: number;
  status: number;
  district?: string;
  error?: string;
}

const p95 = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.95))]!;
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  // The production defaults of the district limits (the test platform's turn the cost rate off).
  platform = await startTestPlatform({ districtRate: readConfig({}).districtRate });
  // North gets SCHOOLS more schools of 100 students (as the services' owners; the demo seed has a handful of each).
  const districts = await ownerClient(platform, 'districts');
  const { rows: schools } = await districts.query<{ id: string }>(
    `insert into school (tenant_id, name) select $1, 'Slow School ' || n from generate_series(1, $2::int) n returning id`,
    [NORTH.tenantId, SCHOOLS],
  );
  const students = await ownerClient(platform, 'students');
  await students.query(
    `insert into student (tenant_id, first_name, last_name, grade, school_id)
     select $1, 'First' || n, 'Last' || n, n % 13, school from unnest($2::uuid[]) school, generate_series(1, $3::int) n`,
    [NORTH.tenantId, schools.map((s) => s.id), STUDENTS_PER_SCHOOL],
  );
});
afterAll(async () => {
  await platform?.stop();
});

describe('one district running a slow operation', () => {
  it('is capped and refused with 429; another district is served without error, never queued behind it, p95 within 3× quiet', async () => {
    const northToken = await platform.token('north-valley');
    const southToken = await platform.token('south-ridge');
    const post = (token: string, query: string) =>
      fetch(platform.gateway.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query }),
      });

    // The slow page is within every limit: served whole.
    const single = await post(northToken, SLOW);
    const page = (await single.json()) as { data?: { district: { name: string }; schools: { students: unknown[] }[] }; errors?: unknown };
    expect(single.status, JSON.stringify(page.errors)).toBe(200);
    expect(page.data!.district.name).toBe(NORTH.name);
    expect(page.data!.schools).toHaveLength(SCHOOLS);
    const slowStudents = page.data!.schools.reduce((sum, s) => sum + s.students.length, 0);
    expect(slowStudents).toBeGreaterThanOrEqual((SCHOOLS - 5) * STUDENTS_PER_SCHOOL);

    // South: one light request at a time, 50 ms after the previous answer, for the whole test, each answer checked
    // (one at a time: South stays far within its own limits however slow the shared machine is).
    const samples: Sample[] = [];
    const now: { phase: Sample['phase'] | 'done' } = { phase: 'quiet' };
    const south = (async () => {
      while (now.phase !== 'done') {
        const sentIn = now.phase;
        const started = performance.now();
        try {
          const response = await post(southToken, LIGHT);
          const body = (await response.json()) as {
            data?: { district?: { name?: string } };
            errors?: { extensions?: { code?: string } }[];
          };
          samples.push({
            phase: sentIn,
            ms: performance.now() - started,
            status: response.status,
            district: body.data?.district?.name,
            error: body.errors?.[0]?.extensions?.code,
          });
        } catch (error) {
          samples.push({ phase: sentIn, ms: performance.now() - started, status: 0, error: String(error) });
        }
        await sleep(SOUTH_INTERVAL_MS);
      }
    })();

    await sleep(QUIET_BEFORE_MS);
    now.phase = 'slow';
    const north = {
      served: 0,
      servedMs: [] as number[],
      refused: new Map<string, number>(),
      retryAfter: new Set<string | null>(),
      other: [] as string[],
      wrongDistrict: 0,
    };
    const slowUntil = performance.now() + SLOW_MS;
    await Promise.all(
      Array.from({ length: NORTH_CLIENTS }, async () => {
        while (performance.now() < slowUntil) {
          const sent = performance.now();
          const response = await post(northToken, SLOW);
          const body = (await response.json()) as {
            data?: { district?: { name?: string } };
            errors?: { extensions?: { code?: string } }[];
          };
          if (response.status === 200 && !body.errors) {
            north.served++;
            north.servedMs.push(performance.now() - sent);
            if (body.data?.district?.name !== NORTH.name) north.wrongDistrict++;
          } else if (response.status === 429) {
            const code = body.errors?.[0]?.extensions?.code ?? 'none';
            north.refused.set(code, (north.refused.get(code) ?? 0) + 1);
            north.retryAfter.add(response.headers.get('retry-after'));
            // North's clients honour Retry-After (a flood that does not is bench figure 11's and abuse.test.ts's case).
            await sleep(Math.min(Number(response.headers.get('retry-after')) * 1000, Math.max(0, slowUntil - performance.now())));
          } else north.other.push(`${response.status} ${JSON.stringify(body.errors?.[0])}`);
        }
      }),
    );
    now.phase = 'quiet';
    await sleep(QUIET_AFTER_MS);
    now.phase = 'done';
    await south;

    const quiet = samples.filter((s) => s.phase === 'quiet');
    const slow = samples.filter((s) => s.phase === 'slow');
    const refused = [...north.refused.values()].reduce((a, b) => a + b, 0);
    const quietP95 = p95(quiet.map((s) => s.ms));
    const slowP95 = p95(slow.map((s) => s.ms));
    const northP50 = [...north.servedMs].sort((a, b) => a - b)[Math.floor(north.servedMs.length / 2)] ?? 0;
    const crossing = north.wrongDistrict + samples.filter((s) => s.district !== SOUTH.name).length;
    // No writes in this fault, and nothing to recover from: North is refused, never South.
    await recordFault({ fault: 'slow district', crossDistrictAnswers: crossing, lostWrites: 0, duplicatedWrites: 0, recoverySeconds: 0 });
    console.log(
      `faults: slow district — North's ${slowStudents}-student page from ${NORTH_CLIENTS} clients for ${SLOW_MS / 1000} s: ${north.served} served, ${refused} refused with 429 (${[...north.refused].map(([c, n]) => `${c} ${n}`).join(', ')}); South ${slow.length} requests meanwhile, ${crossing} cross-district answers, ${slow.filter((s) => s.error || s.status !== 200).length} errors, p95 ${slowP95.toFixed(1)} ms vs quiet ${quietP95.toFixed(1)} ms (${(slowP95 / quietP95).toFixed(2)}x, bound ${P95_BOUND}x); North's served p50 ${northP50.toFixed(1)} ms`,
    );

    console.log(await faultSummaryLine());

    // North: served within its limits, the rest refused at once with 429, Retry-After and a district-limit code.
    expect(north.other).toEqual([]);
    expect(north.wrongDistrict).toBe(0);
    expect(north.served).toBeGreaterThanOrEqual(1);
    expect(refused).toBeGreaterThan(0);
    for (const code of north.refused.keys()) expect([DISTRICT_CONCURRENCY_LIMITED, DISTRICT_RATE_LIMITED]).toContain(code);
    expect([...north.retryAfter].every((r) => Number(r) >= 1)).toBe(true);
    // South: every answer its own district's, no error, its p95 within the bound of its own quiet p95.
    expect(quiet.length).toBeGreaterThanOrEqual(20);
    expect(slow.length).toBeGreaterThanOrEqual(10);
    expect(samples.filter((s) => s.status !== 200 || s.error)).toEqual([]);
    expect(samples.filter((s) => s.district !== SOUTH.name)).toEqual([]);
    expect(slowP95).toBeLessThanOrEqual(quietP95 * P95_BOUND);
    // South never waited in North's queue: its slowest answers came sooner than North's typical one.
    expect(slowP95).toBeLessThan(northP50);
  });
});
