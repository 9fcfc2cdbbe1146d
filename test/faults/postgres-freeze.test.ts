/**
 * Fault: PostgreSQL frozen for 10 s (SIGSTOP on the postmaster and every backend of the test's own server) under
 * load. The timeouts fire (requests are answered during the freeze, with 503s and database codes, instead of
 * hanging), every service keeps answering /health/live, no service holds more connections than its pool allows
 * once PostgreSQL runs again (SIGCONT), and all is well after: complete answers within 5 s, same processes, no
 * cross-district answer, no lost or duplicated write.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, expect, it } from 'vitest';
import {
  allLive,
  applicationConnections,
  checkWrites,
  crossDistrictAnswers,
  faultSummaryLine,
  recordFault,
  recoverySeconds,
  runLoad,
  schoolsOf,
  startFaultPlatform,
  type FaultPlatform,
} from './support.ts';

const POOL_SIZE = 4;
const FREEZE_MS = 10_000;

let platform: FaultPlatform | undefined;
let frozen: number[] = [];
afterAll(async () => {
  // Never leave a stopped server behind, whatever failed.
  for (const pid of frozen) {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // gone
    }
  }
  await platform?.stop();
});

it('answers health checks and fails requests by timeout while PostgreSQL is frozen, and recovers after', { timeout: 180_000 }, async () => {
  platform = await startFaultPlatform({
    DB_POOL_SIZE: String(POOL_SIZE),
    DB_ACQUIRE_TIMEOUT_MS: '1000',
    DB_QUERY_TIMEOUT_MS: '3000',
    DB_TRANSACTION_RETRIES: '1',
    SUBGRAPH_TIMEOUT_MS: '6000',
  });
  const schoolOf = await schoolsOf(platform.gatewayUrl, platform.tokens);
  const pidsBefore = platform.servicePids();
  const admin = await platform.connect('students');
  const runId = `freeze-${randomBytes(4).toString('hex')}`;
  let done = false;
  const clock = performance.now();
  const load = runLoad({
    url: platform.gatewayUrl,
    tokens: platform.tokens,
    schoolOf,
    rate: 15,
    writeEvery: 4,
    withStaff: () => false,
    until: () => done,
    runId,
  });
  await new Promise((r) => setTimeout(r, 3000));

  frozen = platform.postgresPids();
  expect(frozen.length).toBeGreaterThan(3);
  for (const pid of frozen) process.kill(pid, 'SIGSTOP');
  const frozenAt = performance.now() - clock;
  let healthChecks = 0;
  let healthFailures = 0;
  while (performance.now() - clock < frozenAt + FREEZE_MS) {
    healthChecks++;
    if (!(await allLive(platform.ports, 2000))) healthFailures++;
    await new Promise((r) => setTimeout(r, 500));
  }
  for (const pid of frozen) process.kill(pid, 'SIGCONT');
  frozen = [];
  const thawedAt = performance.now() - clock;
  // Let what queued during the freeze drain, then count connections.
  await new Promise((r) => setTimeout(r, 2000));
  const connections = await applicationConnections(admin);
  await new Promise((r) => setTimeout(r, 6000));
  done = true;
  const { answers, startedAt } = await load;
  const shift = startedAt - clock;
  const [freezeFrom, freezeTo] = [frozenAt - shift, thawedAt - shift];

  const failed = answers.filter((a) => a.error !== null);
  // Timeouts fired: requests sent during the freeze were answered (failed) before it ended.
  const answeredWhileFrozen = failed.filter((a) => a.sentAtMs >= freezeFrom && a.answeredAtMs < freezeTo);
  const outsideFreeze = failed.filter((a) => a.answeredAtMs < freezeFrom || a.sentAtMs > freezeTo + 5000);
  const recovery = recoverySeconds(answers, freezeTo, (a) => a.error === null);
  const writes = await checkWrites(admin, runId, answers);
  const crossing = await crossDistrictAnswers(admin, answers);
  const errorKinds = [...new Set(failed.map((a) => a.error))].sort();
  console.log(
    `postgres freeze: ${answers.length} requests, ${failed.length} failed (${errorKinds.join(', ')}), ${answeredWhileFrozen.length} answered while frozen, ` +
      `health ${healthChecks - healthFailures}/${healthChecks}, connections after SIGCONT ${JSON.stringify(Object.fromEntries(connections))}, ` +
      `recovery ${recovery.toFixed(1)} s, ${writes.acknowledged} writes acknowledged`,
  );
  await recordFault({
    fault: 'postgres freeze',
    crossDistrictAnswers: crossing,
    lostWrites: writes.lost + writes.misplaced,
    duplicatedWrites: writes.duplicated,
    recoverySeconds: recovery,
  });
  console.log(await faultSummaryLine());

  expect(healthFailures).toBe(0);
  expect(answeredWhileFrozen.length).toBeGreaterThan(0);
  expect(
    errorKinds.every((kind) => /^(http_503|http_429|graphql_(DATABASE_UNAVAILABLE|DATABASE_BUSY|COMMIT_OUTCOME_UNKNOWN))$/.test(kind!)),
  ).toBe(true);
  expect(outsideFreeze.map((a) => `${a.error} sent ${a.sentAtMs.toFixed(0)} ms`)).toEqual([]);
  expect(connections.size).toBeGreaterThan(0);
  for (const [role, count] of connections) expect(count, role).toBeLessThanOrEqual(POOL_SIZE);
  expect(recovery).toBeLessThanOrEqual(5);
  expect(platform.servicePids()).toEqual(pidsBefore);
  expect(writes.acknowledged).toBeGreaterThan(5);
  expect(writes).toMatchObject({ lost: 0, duplicated: 0, misplaced: 0 });
  expect(crossing).toBe(0);
});
