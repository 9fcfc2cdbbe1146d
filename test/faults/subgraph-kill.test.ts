/**
 * Fault: the staff subgraph's process killed (SIGKILL) under load and restarted by the launcher's supervisor
 * (dev/supervisor.ts). Requests that do not touch staff keep answering completely; those that do get a partial
 * result (the districts' and students' fields, and an error on `section` alone); the gateway's breaker for staff
 * opens; after the restart every answer is complete again. No cross-district answer, no lost or duplicated write.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, expect, it } from 'vitest';
import {
  allLive,
  checkWrites,
  crossDistrictAnswers,
  faultSummaryLine,
  recordFault,
  recoverySeconds,
  runLoad,
  schoolsOf,
  startFaultPlatform,
  waitFor,
  type Answer,
  type FaultPlatform,
} from './support.ts';

let platform: FaultPlatform | undefined;
afterAll(async () => {
  await platform?.stop();
});

/**
 * A read that asked staff and got everything else: district and students present, `section` null, and the error of
 * the failed staff fetch (the gateway gives a fetch's error no path; its code is INTERNAL_SERVER_ERROR, docs/errors.md).
 */
const isPartial = (a: Answer) =>
  a.status === 200 &&
  a.body?.data?.district?.id === a.tenantId &&
  Array.isArray(a.body?.data?.students?.edges) &&
  a.body.data.section === null &&
  a.body.errors?.length > 0 &&
  a.body.errors.every(
    (e: { path?: unknown[]; extensions?: { code?: string } }) =>
      e.extensions?.code === 'INTERNAL_SERVER_ERROR' && (e.path === undefined || e.path[0] === 'section'),
  );

it('answers what does not need a killed subgraph, partially what does, and completely once it is back', { timeout: 180_000 }, async () => {
  platform = await startFaultPlatform({ SUBGRAPH_BREAKER_FAILURES: '3', SUBGRAPH_BREAKER_HALF_OPEN_MS: '1000' });
  const schoolOf = await schoolsOf(platform.gatewayUrl, platform.tokens);
  const pidsBefore = platform.servicePids();
  const runId = `kill-${randomBytes(4).toString('hex')}`;
  let done = false;
  let withStaff = false;
  const clock = performance.now();
  const load = runLoad({
    url: platform.gatewayUrl,
    tokens: platform.tokens,
    schoolOf,
    rate: 20,
    writeEvery: 5,
    // Every other read asks staff too.
    withStaff: () => (withStaff = !withStaff),
    until: () => done,
    runId,
  });
  await new Promise((r) => setTimeout(r, 3000));
  const killedAt = performance.now() - clock;
  process.kill(pidsBefore.get('staff')!, 'SIGKILL');
  // The supervisor restarts it after a second; it is back when its new process is live.
  const restartedPid = await waitFor(
    'the staff subgraph restarted',
    async () => {
      const pid = platform!.servicePids().get('staff');
      return pid !== undefined && pid !== pidsBefore.get('staff') && (await allLive(platform!.ports, 1000)) && pid;
    },
    { timeoutMs: 60_000, intervalMs: 100 },
  );
  await waitFor(
    'the staff subgraph ready',
    () =>
      fetch(`http://127.0.0.1:${platform!.ports.get('staff')}/health/ready`).then(
        (r) => r.ok,
        () => false,
      ),
    { timeoutMs: 60_000, intervalMs: 100 },
  );
  const backAt = performance.now() - clock;
  await new Promise((r) => setTimeout(r, 6000));
  done = true;
  const { answers, startedAt } = await load;
  const shift = startedAt - clock;
  const [outageFrom, outageTo] = [killedAt - shift, backAt - shift];

  const untouched = answers.filter((a) => !a.asksStaff);
  const untouchedFailed = untouched.filter((a) => a.error !== null);
  const staffFailed = answers.filter((a) => a.asksStaff && a.error !== null);
  const partial = staffFailed.filter(isPartial);
  const recovery = recoverySeconds(answers, outageTo, (a) => a.error === null);
  const students = await platform.connect('students');
  const writes = await checkWrites(students, runId, answers);
  const crossing = await crossDistrictAnswers(students, answers);
  console.log(
    `subgraph kill: ${answers.length} requests (${untouched.length} not asking staff, none failed), ${partial.length} partial answers while staff was down ` +
      `${((outageTo - outageFrom) / 1000).toFixed(1)} s, recovery ${recovery.toFixed(1)} s, ${writes.acknowledged} writes acknowledged`,
  );
  await recordFault({
    fault: 'subgraph kill',
    crossDistrictAnswers: crossing,
    lostWrites: writes.lost + writes.misplaced,
    duplicatedWrites: writes.duplicated,
    recoverySeconds: recovery,
  });
  console.log(await faultSummaryLine());

  expect(restartedPid).not.toBe(pidsBefore.get('staff'));
  // What does not ask staff never failed; what does failed only as a partial answer, while staff was down.
  expect(untouchedFailed.map((a) => `${a.kind} ${a.error} ${JSON.stringify(a.body?.errors?.[0])}`)).toEqual([]);
  expect(partial.length).toBeGreaterThan(0);
  expect(staffFailed.filter((a) => !isPartial(a)).map((a) => `${a.error} ${JSON.stringify(a.body)}`)).toEqual([]);
  expect(partial.every((a) => a.answeredAtMs >= outageFrom && a.sentAtMs <= outageTo + 5000)).toBe(true);
  // A dead subgraph fails fast: the gateway opened its breaker.
  expect(platform.launcher.lines.some((l) => l.startsWith('gateway') && l.includes('subgraph circuit open'))).toBe(true);
  expect(recovery).toBeLessThanOrEqual(5);
  const pidsAfter = platform.servicePids();
  for (const name of ['gateway', 'districts', 'students']) expect(pidsAfter.get(name), name).toBe(pidsBefore.get(name));
  expect(writes.acknowledged).toBeGreaterThan(10);
  expect(writes).toMatchObject({ lost: 0, duplicated: 0, misplaced: 0 });
  expect(crossing).toBe(0);
});
