/**
 * Bench part 7: this gateway beside Hive Gateway over the same running subgraphs, same load, same token, district
 * and context work (hive-gateway-main.ts). Each gateway runs in a process of its own; fixed runs alternate between
 * them (the first side alternating too), so the machine's noise hits both, and each run reports the CPU ms per
 * request of every process (utime + stime from /proc over the run) and the latency the load generator saw.
 */
import { fileURLToPath } from 'node:url';
import { loadavg } from 'node:os';
import { environmentWith } from '../../config/config.ts';
import type { Scenario, TokensFile } from '../scenarios/scenario.ts';
import { runScenario } from '../runner/run.ts';
import type { RunReport } from '../runner/report.ts';
import { freePort, startChild } from './platform-process.ts';
import { cpuPerUnit, platformProcessGroups, type ProcessGroups } from './process-cpu.ts';
import { spread, type Spread } from './stats.ts';

const HIVE_MAIN = fileURLToPath(new URL('./hive-gateway-main.ts', import.meta.url));

export interface HiveGatewayProcess {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/** Starts Hive Gateway on a free port with this process's environment (the platform's), ready when /readiness answers. */
export async function startHiveGatewayProcess(logFile: string, nodeOptions: string[] = []): Promise<HiveGatewayProcess> {
  const port = await freePort();
  const env = environmentWith({ LOG_LEVEL: 'warn' });
  const options = [env.NODE_OPTIONS, ...nodeOptions].filter(Boolean).join(' ');
  const { pid, stop } = await startChild(
    [HIVE_MAIN, String(port)],
    { ...env, ...(options ? { NODE_OPTIONS: options } : {}) },
    logFile,
    `http://127.0.0.1:${port}/readiness`,
  );
  return { url: `http://127.0.0.1:${port}/graphql`, pid, stop };
}

export type GatewaySide = 'gateway' | 'hive';

export interface SideRun {
  side: GatewaySide;
  requests: number;
  errors: number;
  p50: number;
  p95: number;
  p99: number;
  /** CPU ms per request of the gateway process measured (this gateway or Hive Gateway). */
  gatewayCpuMs: number;
  /** CPU ms per request of every process, by group (the subgraphs, PostgreSQL when embedded, the gateway). */
  cpuMsPerRequest: Record<string, number>;
  load: string;
}

export interface GatewayComparison {
  runs: SideRun[];
  gateway: { cpuMs: Spread; p95: Spread; errors: number };
  hive: { cpuMs: Spread; p95: Spread; errors: number };
  /** Median CPU ms per request, this gateway over Hive Gateway's. */
  ratio: number;
}

const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

export async function compareWithHiveGateway(options: {
  /** The launcher of the platform, one process per service (its gateway is one of its children). */
  platformPid: number;
  gatewayUrl: string;
  hive: HiveGatewayProcess;
  scenario: Scenario;
  tokens: TokensFile;
  runs: number;
  warmupSeconds: number;
  onRun?(run: SideRun): void;
}): Promise<GatewayComparison> {
  const targets: Record<GatewaySide, string> = { gateway: options.gatewayUrl, hive: options.hive.url };
  // The platform's processes with the gateway measured in place of the one not under load.
  const groupsFor = (side: GatewaySide) => async (): Promise<ProcessGroups> => {
    const groups = await platformProcessGroups(options.platformPid);
    if (side === 'hive') groups.gateway = [options.hive.pid];
    delete groups.launcher;
    return groups;
  };
  for (const side of ['gateway', 'hive'] as const)
    await runScenario({ ...options.scenario, durationSeconds: options.warmupSeconds }, options.tokens, { target: targets[side] });

  const runs: SideRun[] = [];
  for (let run = 0; run < options.runs; run++) {
    const order: GatewaySide[] = run % 2 === 0 ? ['gateway', 'hive'] : ['hive', 'gateway'];
    for (const side of order) {
      let report: RunReport | undefined;
      const measured = await cpuPerUnit(groupsFor(side), async () => {
        report = await runScenario(options.scenario, options.tokens, { target: targets[side] });
        return report.requests;
      });
      const r = report!;
      const result: SideRun = {
        side,
        requests: r.requests,
        errors: r.errors.total,
        p50: r.latencyMs.p50,
        p95: r.latencyMs.p95,
        p99: r.latencyMs.p99,
        gatewayCpuMs: measured.cpuMsPerUnit.gateway ?? NaN,
        cpuMsPerRequest: measured.cpuMsPerUnit,
        load: load(),
      };
      runs.push(result);
      options.onRun?.(result);
    }
  }
  const summary = (side: GatewaySide) => {
    const mine = runs.filter((r) => r.side === side);
    return {
      cpuMs: spread(mine.map((r) => r.gatewayCpuMs)),
      p95: spread(mine.map((r) => r.p95)),
      errors: mine.reduce((sum, r) => sum + r.errors, 0),
    };
  };
  const gateway = summary('gateway');
  const hive = summary('hive');
  return { runs, gateway, hive, ratio: Math.round((gateway.cpuMs.median / hive.cpuMs.median) * 1000) / 1000 };
}
