/**
 * k6 script for every scenario of load/scenarios/: `k6 run -e SCENARIO=mixed -e TOKENS=../out/tokens.json load/k6/scenario.ts`
 * (k6 >= 0.57 runs TypeScript as is). Same operations, district mix, arrival rate and thresholds as the
 * Node runner, through the same module (../scenarios/scenario.ts). Requests are tagged with the district
 * and the operation; thresholds hold overall and for every district tag; handleSummary writes JSON.
 *
 * Environment: SCENARIO (a name in load/scenarios, or a path relative to this file), TOKENS (path relative
 * to this file, default ../out/tokens.json), TARGET, RATE and DURATION (seconds) override the files,
 * SUMMARY is where the JSON summary goes (default load/out/k6-<scenario>-summary.json, from k6's working directory).
 */
import http from 'k6/http';
import { check } from 'k6';
import { Rate } from 'k6/metrics';
import type { Options } from 'k6/options';
import { districtShares, graphqlErrorCode, parseScenario, parseTokens, requestPlanner, type Scenario } from '../scenarios/scenario.ts';

const scenarioName = __ENV.SCENARIO || 'mixed';
const scenarioPath = scenarioName.endsWith('.json') ? scenarioName : `../scenarios/${scenarioName}.json`;
const base = parseScenario(JSON.parse(open(scenarioPath)), scenarioPath);
const scenario: Scenario = {
  ...base,
  rate: __ENV.RATE ? Number(__ENV.RATE) : base.rate,
  durationSeconds: __ENV.DURATION ? Number(__ENV.DURATION) : base.durationSeconds,
};
const tokensPath = __ENV.TOKENS || '../out/tokens.json';
const tokens = parseTokens(JSON.parse(open(tokensPath)), tokensPath);
const target = __ENV.TARGET || tokens.target;
const limits = scenario.thresholds;

/** Responses that arrived (HTTP 200) but carry GraphQL errors: http_req_failed does not see those. */
const graphqlErrors = new Rate('graphql_errors');

const districtThresholds: Record<string, string[]> = {};
for (const { district } of districtShares(scenario, tokens)) {
  districtThresholds[`http_req_duration{district:${district.slug}}`] = [`p(95)<${limits.districtP95Ms ?? limits.p95Ms}`];
}

export const options: Options = {
  scenarios: {
    [scenario.name]: {
      // Open model: k6 starts `rate` iterations a second whatever the response times, adding VUs up to maxVUs.
      executor: 'constant-arrival-rate',
      rate: scenario.rate,
      timeUnit: '1s',
      duration: `${scenario.durationSeconds}s`,
      preAllocatedVUs: Math.max(10, Math.ceil(scenario.rate / 5)),
      maxVUs: Math.max(50, Math.ceil(scenario.rate * 2)),
    },
  },
  thresholds: {
    http_req_duration: [`p(95)<${limits.p95Ms}`, ...(limits.p99Ms === undefined ? [] : [`p(99)<${limits.p99Ms}`])],
    http_req_failed: [`rate<=${limits.errorRate}`],
    graphql_errors: [`rate<=${limits.errorRate}`],
    ...districtThresholds,
  },
  summaryTrendStats: ['min', 'med', 'p(95)', 'p(99)', 'max', 'avg'],
};

const next = requestPlanner(scenario, tokens);

export default function (): void {
  const request = next();
  const tags = { district: request.district.slug, operation: request.operation, name: request.operation };
  const response = http.post(target, request.body, {
    headers: { 'content-type': 'application/json', authorization: `Bearer ${request.district.token}` },
    tags,
    timeout: `${scenario.timeoutMs ?? 10_000}ms`,
  });
  const body = typeof response.body === 'string' ? response.body : '';
  const code = response.status === 200 ? graphqlErrorCode(body) : null;
  graphqlErrors.add(code !== null, tags);
  check(response, { 'HTTP 200': (r) => r.status === 200, 'no GraphQL errors': () => code === null }, tags);
}

interface SummaryMetric {
  values: Record<string, number>;
  thresholds?: Record<string, { ok: boolean }>;
}

/** JSON for machines (SUMMARY), and a short text for people: the headline figures and every failed threshold. */
export function handleSummary(data: { metrics: Record<string, SummaryMetric> }): Record<string, string> {
  const duration = data.metrics.http_req_duration?.values ?? {};
  const failed = Object.entries(data.metrics).flatMap(([metric, m]) =>
    Object.entries(m.thresholds ?? {})
      .filter(([, t]) => !t.ok)
      .map(([expression]) => `  FAIL ${metric}: ${expression}`),
  );
  const round = (n: number | undefined) => (n === undefined ? '-' : n.toFixed(2));
  const text = [
    `${scenario.name} against ${target}: ${data.metrics.http_reqs?.values.count ?? 0} requests`,
    `http_req_duration ms: med ${round(duration.med)}  p95 ${round(duration['p(95)'])}  p99 ${round(duration['p(99)'])}  max ${round(duration.max)}`,
    `http_req_failed ${round((data.metrics.http_req_failed?.values.rate ?? 0) * 100)} %, graphql_errors ${round((data.metrics.graphql_errors?.values.rate ?? 0) * 100)} %`,
    failed.length ? `thresholds failed:\n${failed.join('\n')}` : 'all thresholds passed',
    '',
  ].join('\n');
  return { stdout: text, [__ENV.SUMMARY || `load/out/k6-${scenario.name}-summary.json`]: JSON.stringify(data, null, 2) };
}
