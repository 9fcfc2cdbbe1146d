/**
 * Debian's Prometheus scrapes a running platform (one process per service, each on its own metrics port) while the
 * CI load runs, and the per-district p95 it computes with histogram_quantile over the gateway's latency histogram
 * matches the load runner's own per-district p95 within 20 %. `npm run test:prometheus` (its own CI step); it fails
 * when /usr/bin/prometheus is missing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readRegistry } from '../../config/registry.ts';
import { subgraphVariable } from '../../config/config.ts';
import { freePort } from '../../load/bench/platform-process.ts';
import { startCiPlatform, type CiPlatform } from '../../load/runner/ci.ts';
import { loadScenario, runScenario } from '../../load/runner/run.ts';
import { waitFor } from '../support/wait.ts';

const PROMETHEUS = '/usr/bin/prometheus';
/**
 * Districts with fewer requests than this in the run have too few samples for a p95 worth comparing: at 40–100 one
 * request delayed in the load runner's own process moves its p95 by a fifth, which the server never saw.
 */
const MIN_REQUESTS = 100;
/** The CI scenario (30/s, skewed over 20 districts) run this long gives about six districts over MIN_REQUESTS. */
const MEASURED_SECONDS = 60;
const TOLERANCE = 0.2;
const DISTRICT_COUNT = 'k12_graphql_district_request_duration_seconds_count';
const DISTRICT_BUCKET = 'k12_graphql_district_request_duration_seconds_bucket';

let ci: CiPlatform | undefined;
let prometheus: ChildProcess | undefined;
let prometheusDir: string | undefined;
let prometheusUrl: string;

interface VectorSample {
  metric: Record<string, string>;
  value: [number, string];
}

async function query(promql: string, time?: number): Promise<VectorSample[]> {
  const params = new URLSearchParams({ query: promql, ...(time === undefined ? {} : { time: String(time) }) });
  const response = await fetch(`${prometheusUrl}/api/v1/query?${params}`);
  const body = (await response.json()) as { status: string; error?: string; data: { resultType: string; result: VectorSample[] } };
  if (body.status !== 'success') throw new Error(`Prometheus refused ${promql}: ${body.error}`);
  return body.data.result;
}

/** The requests the gateway has counted, read from its own metrics port. */
async function gatewayRequests(metricsUrl: string): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${DISTRICT_COUNT}{`))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

/** Waits until Prometheus has scraped the gateway's current request count; returns that moment (Unix seconds). */
async function scraped(metricsUrl: string): Promise<number> {
  const expected = await gatewayRequests(metricsUrl);
  await waitFor(
    `Prometheus to scrape the gateway's ${expected} requests`,
    async () => Number((await query(`sum(${DISTRICT_COUNT}{service="gateway"})`))[0]?.value[1] ?? -1) === expected,
    { timeoutMs: 20_000, intervalMs: 250 },
  );
  return Date.now() / 1000;
}

beforeAll(async () => {
  if (!existsSync(PROMETHEUS))
    throw new Error(`${PROMETHEUS} is missing: install Debian's Prometheus (apt-get install -y prometheus), as .ci/run does`);
  ci = await startCiPlatform();
  const { env } = ci;
  const targets = [env.GATEWAY_METRICS_PORT!, ...readRegistry().map((entry) => env[`${subgraphVariable(entry.name)}_METRICS_PORT`]!)].map(
    (port) => `127.0.0.1:${port}`,
  );
  prometheusDir = await mkdtemp(join(tmpdir(), 'k12-prometheus-'));
  await writeFile(
    join(prometheusDir, 'prometheus.yml'),
    [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      'scrape_configs:',
      '  - job_name: k12',
      '    metrics_path: /metrics',
      '    static_configs:',
      `      - targets: [${targets.map((t) => `'${t}'`).join(', ')}]`,
      '',
    ].join('\n'),
  );
  const port = await freePort();
  prometheusUrl = `http://127.0.0.1:${port}`;
  prometheus = spawn(
    PROMETHEUS,
    [
      `--config.file=${join(prometheusDir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(prometheusDir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  await waitFor(
    'every service to be up in Prometheus',
    async () => {
      const up = await query('up').catch(() => []);
      return up.length === targets.length && up.every((s) => s.value[1] === '1');
    },
    { timeoutMs: 60_000, intervalMs: 500 },
  );
}, 300_000);

afterAll(async () => {
  if (prometheus && prometheus.exitCode === null) {
    const exited = new Promise((resolve) => prometheus!.once('exit', resolve));
    prometheus.kill('SIGTERM');
    await exited;
  }
  if (prometheusDir) await rm(prometheusDir, { recursive: true, force: true });
  await ci?.stop();
}, 60_000);

it('Prometheus computes each labelled district p95 within 20 % of the load runner figure under the CI load', async () => {
  const { tokens, platform } = ci!;
  const metricsUrl = `http://127.0.0.1:${ci!.env.GATEWAY_METRICS_PORT}/metrics`;
  const scenario = await loadScenario('ci');
  // Warm-up (JIT, pools, status caches), left out of the comparison: the window starts once Prometheus has its counts.
  await runScenario({ ...scenario, durationSeconds: 5 }, tokens);
  const from = await scraped(metricsUrl);
  const report = await runScenario({ ...scenario, durationSeconds: MEASURED_SECONDS }, tokens);
  const to = await scraped(metricsUrl);
  expect(report.requests).toBeGreaterThan(0);
  expect(platform.gatewayUrl).toBe(tokens.target);

  // The same requests as the runner's: the buckets' growth between the two scraped moments.
  const bucket = `${DISTRICT_BUCKET}{service="gateway"}`;
  const p95s = await query(`histogram_quantile(0.95, sum by (le, district) (${bucket} @ ${to} - ${bucket} @ ${from}))`);
  const counts = await query(
    `sum by (district) (${DISTRICT_COUNT}{service="gateway"} @ ${to} - ${DISTRICT_COUNT}{service="gateway"} @ ${from})`,
  );
  const prometheusP95 = new Map(p95s.map((s) => [s.metric.district!, Number(s.value[1]) * 1000]));
  const prometheusCount = new Map(counts.map((s) => [s.metric.district!, Number(s.value[1])]));
  const scrapeSeconds = await query(`max by (instance) (max_over_time(scrape_duration_seconds[${Math.ceil(to - from)}s] @ ${to}))`);
  const tenantOf = new Map(tokens.districts.map((d) => [d.slug, d.tenantId]));

  const compared = report.byDistrict
    .filter((d) => d.requests >= MIN_REQUESTS)
    .map((d) => {
      const tenantId = tenantOf.get(d.district)!;
      const fromPrometheus = prometheusP95.get(tenantId);
      return {
        slug: d.district,
        requests: d.requests,
        counted: prometheusCount.get(tenantId),
        runnerP95: d.p95,
        prometheusP95: fromPrometheus === undefined ? undefined : Math.round(fromPrometheus * 100) / 100,
        ratio: fromPrometheus === undefined ? undefined : Math.round((fromPrometheus / d.p95) * 1000) / 1000,
      };
    });
  console.log(
    [
      `prometheus: longest scrape per target (ms): ${scrapeSeconds.map((s) => `${s.metric.instance} ${Math.round(Number(s.value[1]) * 1000)}`).join(', ')}`,
      `prometheus: ${report.requests} requests, p95 per district (ms), runner vs histogram_quantile:`,
      ...compared.map(
        (c) =>
          `  ${c.slug.padEnd(20)} ${String(c.requests).padStart(4)} req  runner ${c.runnerP95}  prometheus ${c.prometheusP95}  ratio ${c.ratio}`,
      ),
    ].join('\n'),
  );
  // The ci seed has 20 districts, all within METRICS_TOP_DISTRICTS (20): every one has its own label.
  expect(compared.length).toBeGreaterThanOrEqual(3);
  for (const c of compared) {
    expect(c.counted, `${c.slug}: requests Prometheus counted`).toBe(c.requests);
    expect(c.prometheusP95, `${c.slug}: p95 from Prometheus`).toBeDefined();
    expect(Math.abs(c.ratio! - 1), `${c.slug}: runner p95 ${c.runnerP95} ms, Prometheus ${c.prometheusP95} ms`).toBeLessThanOrEqual(
      TOLERANCE,
    );
  }
}, 240_000);
