/**
 * The bench's machinery that needs no timing: process-cpu's tree and grouping against real processes, the CPU
 * goals, the capacity steps' choice of the sustained rate, and the capacity chart.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpuPerUnit, platformProcessGroups, processTree } from '../load/bench/process-cpu.ts';
import { cpuCeilingRate, cpuChecks, cpuSpreads, GENERATOR } from '../load/bench/cpu-per-process.ts';
import { decisiveSteps, stepFailures, stepRates, sustainedRate, type StepResult } from '../load/bench/capacity.ts';
import { renderCapacityChart, type CapacityPoint } from '../load/runner/chart.ts';
import { waitFor } from './support/wait.ts';

/**
 * A launcher process shaped like `npm start`'s: children named as the platform names its services, a fake
 * postmaster (argv[0] `postgres`) with a backend below it, and one child (`staff`) that burns 200 ms of CPU
 * when a line arrives on stdin. The roles travel base64-encoded, so the launcher's own command line names none.
 */
const CHILD = `
const role = process.argv.at(-1);
const BACKEND = "console.log('up backend ' + process.pid); setInterval(() => {}, 60000);";
if (role === 'postmaster') require('node:child_process').spawn(process.execPath, ['-e', BACKEND], { argv0: 'postgres: k12 k12_students idle', stdio: 'inherit' });
console.log('up ' + role + ' ' + process.pid);
setInterval(() => {}, 60_000);
if (role === 'burner') process.stdin.on('data', () => {
  const start = process.cpuUsage();
  for (;;) { const used = process.cpuUsage(start); if (used.user + used.system >= 200_000) break; }
  console.log('burned');
});
`;
const LAUNCHER = `
const { spawn } = require('node:child_process');
const children = JSON.parse(Buffer.from(process.argv.at(-1), 'base64').toString());
for (const c of children) spawn(process.execPath, ['-e', c.code, ...c.args], { stdio: [c.stdin ? 'inherit' : 'ignore', 'inherit', 'inherit'], argv0: c.argv0 });
setInterval(() => {}, 60_000);
`;

describe('process-cpu against real processes', () => {
  let launcher: ChildProcess;
  let output = '';
  const pidOf = (role: string) => Number(new RegExp(`up ${role} (\\d+)`).exec(output)?.[1]);

  beforeAll(async () => {
    const children = [
      { code: CHILD, args: ['/srv/gateway/main.ts', 'gateway'] },
      { code: CHILD, args: ['/srv/subgraph-server/main.ts', 'students', 'students'] },
      { code: CHILD, args: ['/srv/subgraph-server/main.ts', 'staff', 'burner'], stdin: true },
      { code: CHILD, args: ['--', '-D', '/data', 'postmaster'], argv0: '/usr/lib/postgresql/bin/postgres' },
      { code: CHILD, args: ['other'] },
    ];
    launcher = spawn(process.execPath, ['-e', LAUNCHER, Buffer.from(JSON.stringify(children)).toString('base64')], {
      stdio: ['pipe', 'pipe', 'inherit'],
      detached: true,
    });
    launcher.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    // Generous: on a loaded machine six node processes take a while to start.
    await waitFor('every child and the backend to start', () => (output.match(/^up /gm)?.length ?? 0) === 6, { timeoutMs: 30_000 });
  });
  afterAll(() => {
    // The launcher leads its own process group: this ends it and everything it started.
    if (launcher.pid) process.kill(-launcher.pid, 'SIGKILL');
  });

  it('finds the whole tree below a process, grandchildren included', async () => {
    const tree = await processTree(launcher.pid!);
    expect(tree[0]).toBe(launcher.pid);
    expect([...tree].sort()).toEqual(
      [launcher.pid, ...['gateway', 'students', 'burner', 'postmaster', 'backend', 'other'].map(pidOf)].sort(),
    );
  });

  it('groups the processes by role as npm start names them', async () => {
    const groups = await platformProcessGroups(launcher.pid!);
    expect(groups.gateway).toEqual([pidOf('gateway')]);
    expect(groups.students).toEqual([pidOf('students')]);
    expect(groups.staff).toEqual([pidOf('burner')]);
    expect([...groups.postgres!].sort()).toEqual([pidOf('postmaster'), pidOf('backend')].sort());
    expect([...groups.launcher!].sort()).toEqual([launcher.pid, pidOf('other')].sort());
  });

  it('charges CPU to the process that spent it', async () => {
    const result = await cpuPerUnit(
      () => platformProcessGroups(launcher.pid!),
      async () => {
        const burned = output.split('burned').length;
        launcher.stdin!.write('burn\n');
        await waitFor('the burner to spend its CPU', () => output.split('burned').length > burned, { timeoutMs: 30_000 });
        return 4;
      },
    );
    // 200 ms by the child's own clock; /proc counts in ticks of 10 ms.
    expect(result.cpuMs.staff).toBeGreaterThanOrEqual(180);
    expect(result.cpuMsPerUnit.staff).toBeCloseTo(result.cpuMs.staff! / 4, 2);
    expect(result.cpuMs.staff).toBeGreaterThan(result.cpuMs.gateway! + result.cpuMs.students! + 100);
  });
});

describe('CPU goals (bench part 6)', () => {
  it('checks each service against its goal and each subgraph against PostgreSQL', () => {
    const checks = cpuChecks({ gateway: 0.9, students: 1.2, staff: 0.4, districts: 0.5, postgres: 0.6 }, [
      'districts',
      'students',
      'staff',
    ]);
    const byName = Object.fromEntries(checks.map((c) => [c.name, c]));
    expect(byName['gateway CPU per request']!.met).toBe(true);
    expect(byName['students CPU per request']).toMatchObject({ goal: '<= 0.8 ms', value: '1.2 ms', met: false });
    expect(byName['staff CPU per request']!.met).toBe(true);
    expect(byName['districts CPU per request']!.met).toBe(true);
    expect(byName['students / PostgreSQL CPU per request']).toMatchObject({ value: '2x (1.2 ms vs 0.6 ms)', met: false });
    expect(byName['staff / PostgreSQL CPU per request']).toMatchObject({ value: '0.67x (0.4 ms vs 0.6 ms)', met: true });
    expect(checks).toHaveLength(7);
  });

  it('fails the per-service goals when the services share one process', () => {
    const checks = cpuChecks({ launcher: 3, postgres: 1 }, ['students']);
    expect(checks.map((c) => c.met)).toEqual([false, false, false]);
    expect(checks[0]!.value).toBe('no process of its own');
  });

  it('takes medians across runs and totals the platform without the generator', () => {
    const spreads = cpuSpreads([
      { cpuMsPerRequest: { gateway: 1, postgres: 0.5, [GENERATOR]: 0.8 } },
      { cpuMsPerRequest: { gateway: 3, postgres: 0.7, [GENERATOR]: 0.9 } },
      { cpuMsPerRequest: { gateway: 2, postgres: 0.6, [GENERATOR]: 1 } },
    ]);
    expect(spreads.gateway).toMatchObject({ min: 1, median: 2, max: 3 });
    expect(spreads.platform).toMatchObject({ min: 1.5, median: 2.6, max: 3.7 });
    expect(spreads[GENERATOR]!.median).toBe(0.9);
  });

  it('derives the rate at which the platform and the generator fill every core', () => {
    const spreads = cpuSpreads([{ cpuMsPerRequest: { gateway: 4, postgres: 2, [GENERATOR]: 2 } }]);
    expect(cpuCeilingRate(spreads, 2)).toBe(250);
  });
});

describe('capacity steps (bench part 8)', () => {
  const step = (rate: number, p99: number, errors = 0, achievedRate = rate): StepResult => ({
    rate,
    achievedRate,
    errors,
    latencyMs: { p50: p99 / 4, p95: p99 / 2, p99, max: p99 * 2 },
  });

  it('steps from the start rate up to the maximum', () => {
    expect(stepRates(50, 50, 300)).toEqual([50, 100, 150, 200, 250, 300]);
    expect(stepRates(50, 50, 320)).toEqual([50, 100, 150, 200, 250, 300]);
  });

  it('fails a step on p99, on any error, and on a generator that did not offer the rate', () => {
    expect(stepFailures(step(100, 50))).toEqual([]);
    expect(stepFailures(step(100, 50.1))).toEqual(['p99 50.1 ms > 50 ms']);
    expect(stepFailures(step(100, 10, 1))).toEqual(['1 errors']);
    expect(stepFailures(step(100, 10, 0, 94))).toEqual(['offered 94/s of 100/s']);
    expect(stepFailures(step(100, 30), 25)).toEqual(['p99 30 ms > 25 ms']);
  });

  it('sustains the highest rate below the first failing step', () => {
    const passed = (rate: number, ok: boolean) => ({ rate, passed: ok });
    expect(sustainedRate([passed(50, true), passed(100, true), passed(150, false)])).toBe(100);
    expect(sustainedRate([passed(150, false), passed(50, true), passed(100, true)])).toBe(100);
    expect(sustainedRate([passed(50, true), passed(100, false), passed(150, true)])).toBe(50);
    expect(sustainedRate([passed(50, false)])).toBe(0);
    expect(sustainedRate([passed(50, true), passed(100, true)])).toBe(100);
  });

  it('decides a retried rate by its last attempt', () => {
    const attempt = (rate: number, ok: boolean) => ({ rate, passed: ok });
    const steps = [attempt(50, true), attempt(100, false), attempt(100, true), attempt(150, false), attempt(150, false)];
    expect(decisiveSteps(steps)).toEqual([attempt(50, true), attempt(100, true), attempt(150, false)]);
    expect(sustainedRate(steps)).toBe(100);
  });
});

/** Well-formed enough for a browser: every element closed in order, no stray values. */
function expectWellFormedSvg(svg: string) {
  expect(svg).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?>\n<svg xmlns="http:\/\/www.w3.org\/2000\/svg"[^]*<\/svg>\n$/);
  expect(svg).not.toMatch(/NaN|undefined|Infinity/);
  const open: string[] = [];
  for (const [tag, closing, name, selfClosing] of svg.replace(/<\?xml[^>]*\?>/, '').matchAll(/<(\/?)([a-z]+)\b[^>]*?(\/?)>/g)) {
    if (closing) expect(open.pop(), tag).toBe(name);
    else if (!selfClosing) open.push(name!);
  }
  expect(open).toEqual([]);
}

describe('capacity chart', () => {
  const points: CapacityPoint[] = [
    { rate: 50, latencyMs: { p50: 4, p95: 9, p99: 14 }, passed: true },
    { rate: 100, latencyMs: { p50: 5, p95: 12, p99: 22 }, passed: true },
    { rate: 150, latencyMs: { p50: 40, p95: 900, p99: 4000 }, passed: false },
  ];
  const marks = { sustainedRate: 100, goalRate: 300, p99LimitMs: 50, title: 'Capacity: mixed <test> & co' };

  it('renders a valid SVG with the curve, the 50 ms line and the sustained rate marked', () => {
    const svg = renderCapacityChart(points, marks);
    expectWellFormedSvg(svg);
    expect(svg.match(/<polyline /g)).toHaveLength(3);
    expect(svg.match(/<circle /g)).toHaveLength(9);
    expect(svg.match(/fill="#ffffff" stroke=/g)).toHaveLength(3); // the failed step, hollow in each series
    expect(svg).toContain('p99 limit 50 ms');
    expect(svg).toContain('goal 300/s');
    expect(svg).toContain('Capacity: mixed &#60;test&#62; &#38; co');
    const sustained = /<g id="sustained-rate"><line x1="([\d.]+)"[^]*?>sustained 100\/s<\/text><\/g>/.exec(svg);
    expect(sustained).not.toBeNull();
    // x of rate 100 on an axis to 500 (niceMax of 300 * 1.05), plot from x 64 to 936.
    expect(Number(sustained![1])).toBeCloseTo(64 + (100 / 500) * 872, 0);
  });

  it('marks a sustained rate of 0 when even the first step fails', () => {
    const svg = renderCapacityChart(points.slice(2), { ...marks, sustainedRate: 0 });
    expectWellFormedSvg(svg);
    expect(svg).toMatch(/<g id="sustained-rate"><line x1="64.0"[^]*?sustained 0\/s/);
  });
});
