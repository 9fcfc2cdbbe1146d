/**
 * Every service serves Prometheus metrics on a listener of its own, never on the graph's port: requests by operation
 * and by district, errors by code, the database pool and tenant transactions, the gateway's subgraph fetches and
 * district-status cache. District labels stay bounded however many districts call.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readConfig } from '../config/config.ts';
import { OTHER, ServiceMetrics, TopLabels } from '../telemetry/metrics.ts';
import { demo, startTestPlatform, type TestPlatform } from './support/platform.ts';

const TOP_DISTRICTS = 5;
const NORTH = demo('north-valley').tenantId;
const SOUTH = demo('south-ridge').tenantId;
const ROSTER = 'query RosterPage { district { name } students(first: 2) { edges { node { firstName } } } }';

interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** The samples of one metric in Prometheus's text format. */
function samples(text: string, name: string): Sample[] {
  const found: Sample[] = [];
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const labels = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!]));
    found.push({ labels, value: Number(match[3]) });
  }
  return found;
}

/** The value of the one sample of `name` whose labels include `labels`; undefined when there is none. */
function valueOf(text: string, name: string, labels: Record<string, string>): number | undefined {
  return samples(text, name).find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

const scrape = async (url: string | undefined) => {
  expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
  const response = await fetch(url!);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return response.text();
};

let platform: TestPlatform;
beforeAll(async () => {
  // A window longer than the test: the labelled districts are the first ones seen.
  platform = await startTestPlatform({ metrics: { ...readConfig({}).metrics, topDistricts: TOP_DISTRICTS, windowSeconds: 3600 } });
  for (const tenant of ['north-valley', 'south-ridge', 'north-valley'] as const) {
    const result = await platform.as(tenant, ROSTER);
    expect(result.body.errors).toBeUndefined();
  }
  // Refused before any district is known.
  expect((await platform.graphql({ query: ROSTER }, { token: 'not-a-token' })).status).toBe(401);
});
afterAll(() => platform?.stop());

describe('metrics of a running platform', () => {
  it('the gateway counts requests by operation and district, errors by code, subgraph fetches and district-status lookups', async () => {
    const text = await scrape(platform.gateway.metricsUrl);
    const count = 'k12_graphql_district_request_duration_seconds_count';
    expect(valueOf(text, count, { service: 'gateway', district: NORTH })).toBe(2);
    expect(valueOf(text, count, { service: 'gateway', district: SOUTH })).toBe(1);
    expect(valueOf(text, count, { district: 'none' })).toBe(1);
    expect(valueOf(text, 'k12_graphql_request_duration_seconds_count', { service: 'gateway', operation: 'RosterPage' })).toBe(3);
    expect(valueOf(text, 'k12_graphql_request_duration_seconds_bucket', { operation: 'RosterPage', le: '+Inf' })).toBe(3);
    expect(valueOf(text, 'k12_graphql_district_errors_total', { district: 'none', code: 'UNAUTHENTICATED' })).toBe(1);
    expect(valueOf(text, 'k12_graphql_errors_total', { operation: 'none', code: 'UNAUTHENTICATED' })).toBe(1);
    expect(valueOf(text, 'k12_graphql_district_errors_total', { district: NORTH })).toBeUndefined();
    for (const subgraph of ['districts', 'students'])
      expect(valueOf(text, 'k12_subgraph_fetch_duration_seconds_count', { subgraph })).toBeGreaterThanOrEqual(3);
    expect(samples(text, 'k12_subgraph_fetch_failures_total')).toEqual([]);
    // Each district's first request waited for the directory; north-valley's second was answered from the cache.
    expect(valueOf(text, 'k12_district_status_lookups_total', { result: 'miss' })).toBe(2);
    expect(valueOf(text, 'k12_district_status_lookups_total', { result: 'hit' })).toBe(1);
    expect(valueOf(text, 'process_cpu_user_seconds_total', { service: 'gateway' })).toBeGreaterThan(0);
    expect(samples(text, 'nodejs_eventloop_lag_seconds').length).toBe(1);
  });

  it('each subgraph counts its requests by district, its pool and its tenant transactions', async () => {
    // The directory (districts) also answered the gateway's status lookup of each district.
    for (const [name, lookups] of [
      ['districts', 1],
      ['students', 0],
    ] as const) {
      const text = await scrape(platform.subgraphs[name]!.metricsUrl);
      const count = 'k12_graphql_district_request_duration_seconds_count';
      expect(valueOf(text, count, { service: name, district: NORTH }), name).toBe(2 + lookups);
      expect(valueOf(text, count, { service: name, district: SOUTH }), name).toBe(1 + lookups);
      expect(valueOf(text, 'k12_tenant_transaction_duration_seconds_count', { outcome: 'commit' }), name).toBeGreaterThanOrEqual(3);
      expect(valueOf(text, 'k12_db_pool_max', { service: name }), name).toBe(platform.config.poolSize);
      // Nothing runs between requests: every connection the pool keeps is idle.
      expect(valueOf(text, 'k12_db_pool_connections', { state: 'in_use' }), name).toBe(0);
      expect(valueOf(text, 'k12_db_pool_connections', { state: 'idle' }), name).toBeLessThanOrEqual(platform.config.poolSize);
      expect(valueOf(text, 'k12_db_pool_waiting', {}), name).toBe(0);
    }
  });

  it('the graph port serves no metrics, and the metrics port no graph', async () => {
    const graph = new URL(platform.gateway.url);
    expect((await fetch(new URL('/metrics', graph))).status).toBe(404);
    for (const subgraph of Object.values(platform.subgraphs)) expect((await fetch(new URL('/metrics', subgraph.url))).status).toBe(404);
    const metrics = new URL(platform.gateway.metricsUrl!);
    expect(metrics.port).not.toBe(graph.port);
    const graphOnMetrics = await fetch(new URL('/graphql', metrics), { method: 'POST', body: JSON.stringify({ query: ROSTER }) });
    expect(graphOnMetrics.status).toBe(404);
  });

  it(`keeps at most ${TOP_DISTRICTS} district labels at the gateway when 60 more districts call`, async () => {
    // Valid tokens for districts the directory does not know: refused (403) after their district is verified.
    const unknown = Array.from({ length: 60 }, () => randomUUID());
    for (const tenantId of unknown) expect((await platform.as(tenantId, '{ district { name } }')).status).toBe(403);
    const text = await scrape(platform.gateway.metricsUrl);
    const districts = new Set(samples(text, 'k12_graphql_district_request_duration_seconds_count').map((s) => s.labels.district));
    expect(districts.has(NORTH) && districts.has(SOUTH)).toBe(true);
    expect(districts.has(OTHER)).toBe(true);
    expect(districts.size).toBe(TOP_DISTRICTS + 2); // the labelled ones, `other` and `none`
    const counts = samples(text, 'k12_graphql_district_request_duration_seconds_count');
    expect(counts.reduce((sum, s) => sum + s.value, 0)).toBe(4 + 60);
    expect(valueOf(text, 'k12_graphql_district_errors_total', { district: OTHER, code: 'FORBIDDEN' })).toBe(60 - (TOP_DISTRICTS - 2));
  });
});

describe('bounded labels', () => {
  it('a window picks the busiest values; those that drop out are handed back so their series go', () => {
    const dropped: string[] = [];
    const labels = new TopLabels({ limit: 2, windowMs: 1000, now: 0, onDropped: (value) => dropped.push(value) });
    // First come, first labelled until the window ends.
    expect(['a', 'b', 'c', 'c', 'c', 'a'].map((v) => labels.labelOf(v, 10))).toEqual(['a', 'b', OTHER, OTHER, OTHER, 'a']);
    // Next window: the busiest two of the last one (c: 3, a: 2) keep their labels; b is dropped.
    expect(labels.labelOf('b', 1000)).toBe(OTHER);
    expect(dropped).toEqual(['b']);
    expect([...labels.labelled].sort()).toEqual(['a', 'c']);
    expect(labels.labelOf('c', 1001)).toBe('c');
  });

  it('a trusted operation name always keeps its label, and no flood of names adds series beyond the limit', async () => {
    const metrics = new ServiceMetrics({ service: 'test', topOperations: 3, topDistricts: 3, trustedOperations: ['Trusted'] });
    for (let i = 0; i < 500; i++)
      metrics.requestFinished({ district: randomUUID(), operation: `Flood${i}` }, 0.01, i % 2 ? 'BAD_USER_INPUT' : undefined);
    metrics.requestFinished({ district: NORTH, operation: 'Trusted' }, 0.02, undefined);
    metrics.requestFinished({ operation: 'not a name!' }, 0.02, 'weird code');
    const text = await metrics.registry.metrics();
    const operations = new Set(samples(text, 'k12_graphql_request_duration_seconds_count').map((s) => s.labels.operation));
    expect([...operations].sort()).toEqual(['Flood0', 'Flood1', 'Flood2', 'Trusted', OTHER].sort());
    const districts = new Set(samples(text, 'k12_graphql_district_request_duration_seconds_count').map((s) => s.labels.district));
    expect(districts.size).toBe(3 + 2); // three labelled, `other` (north-valley among them) and `none`
    expect(valueOf(text, 'k12_graphql_errors_total', { operation: OTHER, code: OTHER })).toBe(1);
  });
});
