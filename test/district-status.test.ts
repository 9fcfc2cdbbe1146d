/** The gateway serves only ACTIVE, registered districts, and remembers a district's status for a while. */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demo, startTestPlatform, type DemoSlug, type TestPlatform } from './support/platform.ts';
import { until, waitFor } from './support/wait.ts';

const STUDENTS = '{ students(first: 1) { edges { node { id } } } }';

async function setStatus(platform: TestPlatform, slug: DemoSlug, status: string) {
  const owner = await platform.connect(platform.databases.districts!.ownerUrl);
  await owner.query('update district set status = $1 where tenant_id = $2', [status, demo(slug).tenantId]);
  await owner.end();
}

describe('district status, read on every request (TTL 0)', () => {
  let platform: TestPlatform;
  beforeAll(async () => {
    platform = await startTestPlatform({ districtStatusTtlMs: 0 });
  });
  afterAll(() => platform?.stop());

  it.each([
    ['suspended', 'district is suspended'],
    ['migrating', 'district is being migrated, try again later'],
  ])('a %s district is refused with 403 and no data', async (status, message) => {
    await setStatus(platform, 'east-lake', status);
    try {
      const { status: http, body } = await platform.as('east-lake', '{ district { name } students(first: 1) { edges { node { id } } } }');
      expect(http).toBe(403);
      expect(body).toEqual({ errors: [{ message, extensions: { code: 'FORBIDDEN' } }] });
    } finally {
      await setStatus(platform, 'east-lake', 'active');
    }
    expect((await platform.as('east-lake', '{ district { status } }')).body.data.district.status).toBe('ACTIVE');
  });

  it('a valid token for a district that is not registered is refused', async () => {
    const { status, body } = await platform.as(randomUUID(), '{ students(first: 1) { edges { node { id } } } }');
    expect(status).toBe(403);
    expect(body.errors?.[0]).toEqual({ message: 'district is not registered', extensions: { code: 'FORBIDDEN' } });
  });
});

describe('district status cache (TTL 2 s)', () => {
  // Long enough that a request on a loaded machine takes a small part of it; every wait below is a TTL.
  const TTL = 2000;
  let platform: TestPlatform;
  /** Status lookups the districts subgraph has answered (its `district` reads). */
  let lookups = 0;
  beforeAll(async () => {
    platform = await startTestPlatform({ districtStatusTtlMs: TTL }, (service, sql) => {
      if (service === 'districts' && /from "district"/i.test(sql)) lookups++;
    });
  });
  afterAll(async () => {
    await platform?.stop();
  });

  const students = (slug: DemoSlug) => platform.as(slug, STUDENTS);
  const UNAVAILABLE = { errors: [{ message: 'district directory unavailable, try again', extensions: { code: 'SERVICE_UNAVAILABLE' } }] };

  it('answers from the cache within the TTL, serves the previous answer while one refresh runs, and waits for a fresh one past 2 × TTL; with the directory down, 503 once nothing is young enough', async () => {
    lookups = 0;
    const firstSent = performance.now();
    expect((await students('east-lake')).status).toBe(200);
    const firstAnswered = performance.now();
    expect(lookups).toBe(1);
    await setStatus(platform, 'east-lake', 'suspended');

    // Within the TTL: the cached ACTIVE answers, nobody asks the directory.
    expect((await students('east-lake')).status).toBe(200);
    expect(lookups).toBe(1);
    expect(performance.now() - firstSent, 'precondition: these requests took a small part of the TTL').toBeLessThan(TTL);

    // Past the TTL, within 2 × TTL of the lookup: the previous answer (ACTIVE) still serves while one refresh runs.
    await until(firstAnswered + TTL);
    const burst = await Promise.all(Array.from({ length: 5 }, () => students('east-lake')));
    // The status is SUSPENDED by now: an ACTIVE answer is the previous one, served while the refresh runs (which of
    // the five reaches the gateway first is the network's choice, so not necessarily the first sent).
    expect(burst.map((answer) => answer.status)).toContain(200);
    for (const answer of burst) expect([200, 403]).toContain(answer.status);
    const refused = await waitFor(
      'the refreshed SUSPENDED status to be served',
      async () => {
        const answer = await students('east-lake');
        return answer.status === 403 ? answer : undefined;
      },
      { timeoutMs: TTL },
    );
    const refreshed = performance.now();
    expect(refused.body).toEqual({ errors: [{ message: 'district is suspended', extensions: { code: 'FORBIDDEN' } }] });
    expect(lookups, 'one refresh, however many requests arrived meanwhile').toBe(2);

    // Past 2 × TTL: the SUSPENDED answer is too old to serve; the request waits for a fresh lookup (ACTIVE again).
    await setStatus(platform, 'east-lake', 'active');
    await until(refreshed + 2 * TTL);
    expect((await students('east-lake')).status).toBe(200);
    const freshAnswered = performance.now();
    expect(lookups).toBe(3);

    // The directory goes away.
    await platform.subgraphs.districts!.close();
    // A district with no answer at all gets 503 at once.
    const unknown = await students('north-valley');
    expect(unknown.status).toBe(503);
    expect(unknown.body).toEqual(UNAVAILABLE);
    // Within 2 × TTL, East Lake's previous answer still serves, although its refresh fails.
    await until(freshAnswered + TTL);
    expect((await students('east-lake')).status).toBe(200);
    // Past 2 × TTL nothing is young enough: 503, with no data.
    await until(freshAnswered + 2 * TTL);
    const down = await students('east-lake');
    expect(down.status).toBe(503);
    expect(down.body).toEqual(UNAVAILABLE);
  }, 60_000);
});
