/**
 * Bench part 12: what telemetry costs per request. Four sets of service processes (the gateway and every subgraph,
 * configured as `npm start` configures its children) run beside each other on the bench's databases: `plain`
 * (METRICS=off, no trace export), `metrics` (Prometheus metrics, scraped every 5 s as Prometheus would) and
 * `metrics+traces` (the same, plus every request traced and exported over OTLP/HTTP to a sink in this process that
 * drops what it receives) and `metrics+traces 10%` (one request in ten traced: OTEL_TRACES_SAMPLE_RATIO=0.1). Fixed runs rotate between the sets, so the machine's noise hits all four, and each run
 * reports the latency the load generator saw and the CPU ms per request of the set's processes.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { environmentWith, readConfig, subgraphVariable, type PlatformConfig } from '../../config/config.ts';
import { readRegistry } from '../../config/registry.ts';
import type { ServiceDatabase } from '../../database/database.ts';
import { childSpecs } from '../../dev/service-processes.ts';
import type { Scenario, TokensFile } from '../scenarios/scenario.ts';
import { runScenario } from '../runner/run.ts';
import type { RunReport } from '../runner/report.ts';
import { freePort, freeServicePorts, startChild } from './platform-process.ts';
import { cpuPerUnit } from './process-cpu.ts';
import { spread, type Spread } from './stats.ts';

export const TELEMETRY_SIDES = ['plain', 'metrics', 'metrics+traces', 'metrics+traces 10%'] as const;
export type TelemetrySide = (typeof TELEMETRY_SIDES)[number];

/** Prometheus's default is 15 s; a tighter interval makes the scrape's own cost show, if it has one. */
const SCRAPE_INTERVAL_MS = 5_000;

export interface TelemetryRun {
  side: TelemetrySide;
  requests: number;
  errors: number;
  p50: number;
  p95: number;
  /** CPU ms per request of the set's processes: each service and their total. */
  cpuMsPerRequest: Record<string, number>;
  load: string;
}

export interface TelemetryCost {
  runs: TelemetryRun[];
  sides: Record<TelemetrySide, { p50: Spread; p95: Spread; cpuMs: Spread; errors: number }>;
  /** Median p50 and CPU of each side minus plain's. */
  added: Record<Exclude<TelemetrySide, 'plain'>, { p50Ms: number; cpuMs: number }>;
  /** OTLP requests and bytes the sink received over the whole part. */
  exported: { requests: number; bytes: number };
}

interface ServiceSet {
  gatewayUrl: string;
  pids: Record<string, number>;
  metricsUrls: string[];
  stop(): Promise<void>;
}

const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

/** An OTLP/HTTP endpoint that accepts every export and keeps only a count. */
async function startDroppingSink(): Promise<{ url: string; exported: TelemetryCost['exported']; close(): Promise<void> }> {
  const exported = { requests: 0, bytes: 0 };
  const server: Server = createServer((request, response) => {
    exported.requests++;
    request.on('data', (chunk: Buffer) => (exported.bytes += chunk.length));
    request.on('end', () => response.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    exported,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

async function startServiceSet(
  side: TelemetrySide,
  base: PlatformConfig,
  databases: Record<string, ServiceDatabase>,
  sinkUrl: string,
  outDir: string,
): Promise<ServiceSet> {
  const metricsPorts: Record<string, string> = {};
  if (side !== 'plain') {
    metricsPorts.GATEWAY_METRICS_PORT = String(await freePort());
    for (const entry of readRegistry()) metricsPorts[`${subgraphVariable(entry.name)}_METRICS_PORT`] = String(await freePort());
  }
  const env = environmentWith({
    ...(await freeServicePorts()),
    ...metricsPorts,
    DATA_DIR: base.dataDir,
    LOG_LEVEL: 'warn',
    METRICS: side === 'plain' ? 'off' : 'on',
    OTEL_EXPORTER_OTLP_ENDPOINT: side.startsWith('metrics+traces') ? sinkUrl : undefined,
    OTEL_TRACES_SAMPLE_RATIO: side === 'metrics+traces 10%' ? '0.1' : '1',
  });
  const config = readConfig(env);
  const specs = childSpecs({ config, databases, definitions: readRegistry() }, env);
  const started: { name: string; pid: number; stop(): Promise<void> }[] = [];
  const stop = async () => {
    for (const child of started.reverse()) await child.stop();
  };
  try {
    for (const spec of specs) {
      const child = await startChild(spec.args, spec.env, join(outDir, `telemetry-${side}-${spec.name}.log`), spec.readyUrl);
      started.push({ name: spec.name, ...child });
    }
  } catch (error) {
    await stop();
    throw error;
  }
  const host = config.localHost;
  return {
    gatewayUrl: `http://${host}:${config.gatewayPort}/graphql`,
    pids: Object.fromEntries(started.map((c) => [c.name, c.pid])),
    metricsUrls: Object.values(metricsPorts).map((port) => `http://${host}:${port}/metrics`),
    stop,
  };
}

/** Scrapes every metrics URL each interval until stopped; a failed scrape fails the run. */
function scrapeWhile(urls: string[]): { stop(): Promise<void> } {
  let failure: Error | undefined;
  const scrape = () =>
    Promise.all(
      urls.map(async (url) => {
        const response = await fetch(url, { signal: AbortSignal.timeout(SCRAPE_INTERVAL_MS) });
        await response.text();
        if (!response.ok) throw new Error(`scraping ${url}: HTTP ${response.status}`);
      }),
    ).catch((error: Error) => (failure ??= error));
  const timer = urls.length ? setInterval(() => void scrape(), SCRAPE_INTERVAL_MS) : undefined;
  return {
    async stop() {
      clearInterval(timer);
      if (failure) throw failure;
    },
  };
}

export async function measureTelemetryCost(options: {
  config: PlatformConfig;
  databases: Record<string, ServiceDatabase>;
  scenario: Scenario;
  tokens: TokensFile;
  runs: number;
  warmupSeconds: number;
  outDir: string;
  onRun?(run: TelemetryRun): void;
}): Promise<TelemetryCost> {
  const sink = await startDroppingSink();
  const sets = {} as Record<TelemetrySide, ServiceSet>;
  try {
    for (const side of TELEMETRY_SIDES)
      sets[side] = await startServiceSet(side, options.config, options.databases, sink.url, options.outDir);
    const run = async (side: TelemetrySide, scenario: Scenario): Promise<{ report: RunReport; cpu: Record<string, number> }> => {
      const set = sets[side];
      const scraper = scrapeWhile(set.metricsUrls);
      let report: RunReport | undefined;
      const measured = await cpuPerUnit(
        async () => Object.fromEntries(Object.entries(set.pids).map(([name, pid]) => [name, [pid]])),
        async () => {
          report = await runScenario(scenario, options.tokens, { target: set.gatewayUrl });
          return report.requests;
        },
      );
      await scraper.stop();
      const total = Object.values(measured.cpuMs).reduce((sum, ms) => sum + ms, 0);
      const cpu = { ...measured.cpuMsPerUnit, total: report!.requests ? Math.round((total / report!.requests) * 1000) / 1000 : NaN };
      return { report: report!, cpu };
    };
    for (const side of TELEMETRY_SIDES) await run(side, { ...options.scenario, durationSeconds: options.warmupSeconds });

    const runs: TelemetryRun[] = [];
    for (let i = 0; i < options.runs; i++) {
      // Each run starts with a different side, so no side always follows the same one.
      const order = TELEMETRY_SIDES.map((_, k) => TELEMETRY_SIDES[(i + k) % TELEMETRY_SIDES.length]!);
      for (const side of order) {
        const { report, cpu } = await run(side, options.scenario);
        const result: TelemetryRun = {
          side,
          requests: report.requests,
          errors: report.errors.total,
          p50: report.latencyMs.p50,
          p95: report.latencyMs.p95,
          cpuMsPerRequest: cpu,
          load: load(),
        };
        runs.push(result);
        options.onRun?.(result);
      }
    }
    const summary = (side: TelemetrySide) => {
      const mine = runs.filter((r) => r.side === side);
      return {
        p50: spread(mine.map((r) => r.p50)),
        p95: spread(mine.map((r) => r.p95)),
        cpuMs: spread(mine.map((r) => r.cpuMsPerRequest.total!)),
        errors: mine.reduce((sum, r) => sum + r.errors, 0),
      };
    };
    const sides = Object.fromEntries(TELEMETRY_SIDES.map((side) => [side, summary(side)])) as TelemetryCost['sides'];
    const over = (side: Exclude<TelemetrySide, 'plain'>) => ({
      p50Ms: Math.round((sides[side].p50.median - sides.plain.p50.median) * 1000) / 1000,
      cpuMs: Math.round((sides[side].cpuMs.median - sides.plain.cpuMs.median) * 1000) / 1000,
    });
    const added = Object.fromEntries(TELEMETRY_SIDES.filter((side) => side !== 'plain').map((side) => [side, over(side)]));
    return { runs, sides, added: added as TelemetryCost['added'], exported: sink.exported };
  } finally {
    for (const set of Object.values(sets)) await set.stop();
    await sink.close();
  }
}
