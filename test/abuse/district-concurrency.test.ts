/** The gateway's per-district concurrency: running, waiting, then 429 at once — one district's flood never queues another's. */
import { describe, expect, it } from 'vitest';
import { createDistrictConcurrency } from '../../gateway/district-concurrency.ts';
import { HttpError } from '../../http/server.ts';

const NORTH = '5a0c9a1e-1f2b-4c3d-8e4f-5a6b7c8d9e01';
const SOUTH = '8b2d4e6f-1a3c-4e5f-9a7b-2c3d4e5f6071';

/** A request that runs until released, recording when it started. */
function gate() {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const state = { started: false };
  return { state, release, work: async () => ((state.started = true), await released, 'done') };
}

describe('per-district concurrency', () => {
  it('runs maxInFlight at once, queues maxQueued in arrival order, and refuses the next with 429 and Retry-After', async () => {
    const run = createDistrictConcurrency({ maxInFlight: 2, maxQueued: 3 });
    const gates = Array.from({ length: 5 }, gate);
    const results = gates.map((g) => run(NORTH, g.work));
    await new Promise((resolve) => setImmediate(resolve));
    expect(gates.map((g) => g.state.started)).toEqual([true, true, false, false, false]);

    const refusal = await run(NORTH, async () => 'never').catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(HttpError);
    expect(refusal).toMatchObject({ status: 429, code: 'TOO_MANY_REQUESTS', headers: { 'retry-after': '1' } });
    expect((refusal as HttpError).message).toBe('District concurrency limit of 2 running and 3 waiting requests reached; retry after 1 s');

    // Another district is not held up by the first one's queue.
    expect(await run(SOUTH, async () => 'south')).toBe('south');

    gates[0]!.release();
    await results[0];
    await new Promise((resolve) => setImmediate(resolve));
    expect(gates.map((g) => g.state.started)).toEqual([true, true, true, false, false]);
    for (const g of gates) g.release();
    expect(await Promise.all(results)).toEqual(['done', 'done', 'done', 'done', 'done']);

    // Idle again: the district starts afresh.
    const again = Array.from({ length: 5 }, gate);
    const second = again.map((g) => run(NORTH, g.work));
    for (const g of again) g.release();
    expect(await Promise.all(second)).toEqual(['done', 'done', 'done', 'done', 'done']);
  });

  it('a failing request frees its slot', async () => {
    const run = createDistrictConcurrency({ maxInFlight: 1, maxQueued: 0 });
    await expect(run(NORTH, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await run(NORTH, async () => 'next')).toBe('next');
  });
});
