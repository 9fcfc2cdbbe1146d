/**
 * Prometheus metrics (prom-client), one registry per service, served on a listener of the service's own (never
 * the public graph port): GraphQL requests by operation and by district, errors by code, the database pool, tenant
 * transactions, the gateway's subgraph fetches and district-status cache, and Node's process metrics. Every metric
 * and a starter alert for each are in docs/operations.md.
 *
 * Labels stay bounded whatever clients send: a district or an operation name keeps a label of its own only while it
 * is among the busiest (TopLabels), the rest count as `other`, and a label that drops out has its series removed.
 * The hot path allocates no label objects: each label value's series (prom-client children) is looked up once and
 * kept.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { DEFAULT_METRICS_LABELS, type PlatformConfig } from '../config/config.ts';

/** Resolution of the event-loop delay metrics (nodejs_eventloop_lag_*). */
const EVENT_LOOP_SAMPLE_MS = 100;

/** The label of everything that is not among the busiest. */
export const OTHER = 'other';
/** The district of a request refused before its caller was verified, the operation of one refused before parsing. */
export const NONE = 'none';
/** An operation without a name. */
export const ANONYMOUS = 'anonymous';

/** The E24 preferred numbers: 24 values per decade, each about 10 % above the one before. */
const E24 = [1, 1.1, 1.2, 1.3, 1.5, 1.6, 1.8, 2, 2.2, 2.4, 2.7, 3, 3.3, 3.6, 3.9, 4.3, 4.7, 5.1, 5.6, 6.2, 6.8, 7.5, 8.2, 9.1];

/**
 * Latency buckets, seconds: 1, 2, 3, 4 ms, then about 10 % apart (E24) from 4.7 ms to 1 s, where latency objectives
 * live, then coarser up to 30 s. A quantile that histogram_quantile interpolates inside one bucket is off by a few
 * percent at most there (the Prometheus test compares the gateway's per-district p95 with the load runner's).
 */
export const LATENCY_BUCKETS: readonly number[] = [
  0.001,
  0.002,
  0.003,
  0.004,
  ...[0.001, 0.01, 0.1].flatMap((decade) => E24.map((m) => Number((m * decade).toPrecision(2)))).filter((b) => b >= 0.0047),
  1,
  1.5,
  2,
  3,
  5,
  7.5,
  10,
  15,
  30,
];

/** What GraphQL allows as an operation name, not too long to be a label. */
const OPERATION_NAME = /^[_A-Za-z][_0-9A-Za-z]{0,99}$/;
/** Error codes are ours and Apollo's (docs/errors.md); anything else is counted as `other`. */
const ERROR_CODE = /^[A-Z][A-Z0-9_]{0,63}$/;

/**
 * The label values of one dimension (districts, operation names) that keep their own series: at most `limit` of
 * them, the busiest over the previous window; values seen first take free places until the next window decides.
 * `pinned` values (trusted operation names) always keep theirs. A value that loses its place is handed to
 * `onDropped`, which removes its series, so the number of series stays bounded over time too.
 */
export class TopLabels {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #pinned: ReadonlySet<string>;
  readonly #onDropped: (value: string) => void;
  readonly #accepts: (value: string) => boolean;
  /** Counts of the current window; bounded, so a flood of distinct values cannot grow it without limit. */
  #counts = new Map<string, number>();
  readonly #maxCounted: number;
  #labelled = new Set<string>();
  #windowEndsAt: number;

  constructor(options: {
    limit: number;
    windowMs: number;
    pinned?: Iterable<string>;
    onDropped?: (value: string) => void;
    /** Values that may have a label at all (others are always `other`); asked only of values without one. */
    accepts?: (value: string) => boolean;
    now?: number;
  }) {
    this.#limit = options.limit;
    this.#windowMs = options.windowMs;
    this.#pinned = new Set(options.pinned ?? []);
    this.#onDropped = options.onDropped ?? (() => {});
    this.#accepts = options.accepts ?? (() => true);
    this.#maxCounted = Math.max(1000, 10 * options.limit);
    this.#windowEndsAt = (options.now ?? performance.now()) + options.windowMs;
  }

  /** The label of one occurrence of `value` at `now` (performance.now()): itself or `other`. */
  labelOf(value: string, now: number = performance.now()): string {
    if (this.#pinned.has(value)) return value;
    if (now >= this.#windowEndsAt) this.#rotate(now);
    if (!this.#labelled.has(value) && !this.#accepts(value)) return OTHER;
    const count = this.#counts.get(value);
    if (count !== undefined) this.#counts.set(value, count + 1);
    else if (this.#counts.size < this.#maxCounted) this.#counts.set(value, 1);
    if (this.#labelled.has(value)) return value;
    if (this.#labelled.size < this.#limit) {
      this.#labelled.add(value);
      return value;
    }
    return OTHER;
  }

  /** The values that have their own label now (pinned ones aside). */
  get labelled(): ReadonlySet<string> {
    return this.#labelled;
  }

  #rotate(now: number): void {
    const busiest = new Set(
      [...this.#counts]
        .sort((a, b) => b[1] - a[1])
        .slice(0, this.#limit)
        .map(([value]) => value),
    );
    for (const value of this.#labelled) if (!busiest.has(value)) this.#onDropped(value);
    this.#labelled = busiest;
    this.#counts = new Map();
    // A window with no traffic at all is skipped rather than replayed.
    this.#windowEndsAt = now + this.#windowMs;
  }
}

/** What a request handler learns about its request; the HTTP edge times it and records it when it ends. */
export interface RequestObservation {
  /** Set once the caller's district is verified. */
  district?: string;
  /** Set once the operation is resolved; null for an operation without a name. */
  operation?: string | null;
  /** The code of the request's first GraphQL error (a 200 with errors). */
  errorCode?: string;
}

/**
 * Notes in the request's observation what Apollo resolves: the operation's name, and the code of its first error
 * (an error without one is INTERNAL_SERVER_ERROR, as Apollo answers it).
 */
export function metricsPlugin<TContext extends BaseContext>(
  observationOf: (context: TContext) => RequestObservation | undefined,
): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ contextValue, operationName }) {
          const observation = observationOf(contextValue);
          if (observation) observation.operation = operationName;
        },
        async didEncounterErrors({ contextValue, errors, operationName }) {
          const observation = observationOf(contextValue);
          if (!observation || observation.errorCode !== undefined) return;
          // Parsing and validation errors come before the operation is resolved.
          observation.operation ??= operationName;
          const code = errors[0]?.extensions?.code;
          observation.errorCode = typeof code === 'string' ? code : 'INTERNAL_SERVER_ERROR';
        },
      };
    },
  };
}

/** The series of one label value: its latency histogram child and its error counter children by code. */
interface Series {
  duration: Histogram.Internal<string>;
  errors: Map<string, Counter.Internal>;
}

class LabelledRequests {
  readonly #duration: Histogram<string>;
  readonly #errors: Counter<string>;
  readonly #label: string;
  readonly #series = new Map<string, Series>();

  constructor(registry: Registry, label: 'operation' | 'district', names: { duration: string; errors: string }, help: string) {
    this.#label = label;
    this.#duration = new Histogram({
      name: names.duration,
      help: `GraphQL requests by ${help}: latency from the first byte read to the last byte written, seconds`,
      labelNames: [label],
      buckets: [...LATENCY_BUCKETS],
      registers: [registry],
    });
    this.#errors = new Counter({
      name: names.errors,
      help: `GraphQL requests that failed, by ${help} and the code of their (first) error`,
      labelNames: [label, 'code'],
      registers: [registry],
    });
  }

  #seriesOf(value: string): Series {
    let series = this.#series.get(value);
    if (!series) {
      series = { duration: this.#duration.labels({ [this.#label]: value }), errors: new Map() };
      this.#series.set(value, series);
    }
    return series;
  }

  record(value: string, seconds: number, errorCode: string | undefined): void {
    const series = this.#seriesOf(value);
    series.duration.observe(seconds);
    if (errorCode === undefined) return;
    let errors = series.errors.get(errorCode);
    if (!errors) series.errors.set(errorCode, (errors = this.#errors.labels({ [this.#label]: value, code: errorCode })));
    errors.inc();
  }

  drop(value: string): void {
    const series = this.#series.get(value);
    if (!series) return;
    this.#series.delete(value);
    this.#duration.remove({ [this.#label]: value });
    for (const code of series.errors.keys()) this.#errors.remove({ [this.#label]: value, code });
  }
}

export interface ServiceMetricsOptions {
  service: string;
  topDistricts?: number;
  topOperations?: number;
  windowSeconds?: number;
  /** Operation names that always keep their label (the trusted documents). */
  trustedOperations?: Iterable<string>;
}

export interface MetricsServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** The metrics every service has: requests by operation and by district, errors by code, process metrics. */
export class ServiceMetrics {
  readonly registry = new Registry();
  readonly #byOperation: LabelledRequests;
  readonly #byDistrict: LabelledRequests;
  readonly #operations: TopLabels;
  readonly #districts: TopLabels;

  constructor(options: ServiceMetricsOptions) {
    this.registry.setDefaultLabels({ service: options.service });
    // The event-loop delay histogram samples every EVENT_LOOP_SAMPLE_MS: at prom-client's default (10 ms) it alone cost
    // an idle process about 6 ms of CPU a second here; at 100 ms about 1 ms, still fine-grained for a lag worth alerting on.
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
    const windowMs = (options.windowSeconds ?? DEFAULT_METRICS_LABELS.windowSeconds) * 1000;
    this.#byOperation = new LabelledRequests(
      this.registry,
      'operation',
      { duration: 'k12_graphql_request_duration_seconds', errors: 'k12_graphql_errors_total' },
      'operation name',
    );
    this.#byDistrict = new LabelledRequests(
      this.registry,
      'district',
      { duration: 'k12_graphql_district_request_duration_seconds', errors: 'k12_graphql_district_errors_total' },
      'district',
    );
    this.#operations = new TopLabels({
      limit: options.topOperations ?? DEFAULT_METRICS_LABELS.topOperations,
      windowMs,
      pinned: options.trustedOperations,
      accepts: (name) => OPERATION_NAME.test(name),
      onDropped: (value) => this.#byOperation.drop(value),
    });
    this.#districts = new TopLabels({
      limit: options.topDistricts ?? DEFAULT_METRICS_LABELS.topDistricts,
      windowMs,
      onDropped: (value) => this.#byDistrict.drop(value),
    });
  }

  /** Records one finished GraphQL request (http/server.ts calls it for every request on the graph path). */
  requestFinished(observation: RequestObservation, seconds: number, errorCode: string | undefined): void {
    const now = performance.now();
    const { district, operation } = observation;
    const code = errorCode === undefined ? undefined : ERROR_CODE.test(errorCode) ? errorCode : OTHER;
    const operationLabel = operation === undefined ? NONE : operation === null ? ANONYMOUS : this.#operations.labelOf(operation, now);
    this.#byOperation.record(operationLabel, seconds, code);
    this.#byDistrict.record(district === undefined ? NONE : this.#districts.labelOf(district, now), seconds, code);
  }

  /** The districts that have a label of their own now. */
  get labelledDistricts(): ReadonlySet<string> {
    return this.#districts.labelled;
  }

  /**
   * The registry in Prometheus's text format, as registry.metrics() writes it, one metric at a time with the event loop
   * free in between: requests that arrive during a scrape wait for one metric's rendering, not the whole registry's.
   */
  async #render(): Promise<string> {
    const parts: string[] = [];
    for (const metric of this.registry.getMetricsAsArray()) {
      parts.push(await this.registry.getSingleMetricAsString(metric.name));
      await new Promise((resolve) => setImmediate(resolve));
    }
    return `${parts.join('\n\n')}\n`;
  }

  /** Serves GET /metrics on its own listener (port 0: a free one). */
  async serve(port: number, host = '127.0.0.1'): Promise<MetricsServer> {
    const server: Server = createServer((req, res) => {
      if (req.method !== 'GET' || (req.url !== '/metrics' && !req.url?.startsWith('/metrics?'))) {
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('Not found: the metrics are at /metrics\n');
        return;
      }
      this.#render().then(
        (text) => res.writeHead(200, { 'content-type': this.registry.contentType, 'cache-control': 'no-store' }).end(text),
        () => res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics unavailable\n'),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) =>
        reject(error.code === 'EADDRINUSE' ? new Error(`metrics port ${port} is already in use (README, Configuration)`) : error),
      );
      server.listen({ port, host }, () => resolve());
    });
    const bound = (server.address() as AddressInfo).port;
    const urlHost = host === '0.0.0.0' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
    return {
      url: `http://${urlHost}:${bound}/metrics`,
      port: bound,
      close: () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    };
  }
}

/** What a subgraph's pool reports (pg.Pool's counters). */
export interface PoolStats {
  total: number;
  idle: number;
  waiting: number;
  max: number;
}

/** A subgraph's database metrics: its pool (read at each scrape) and its tenant transactions. */
export class DatabaseMetrics {
  readonly #transactions: { commit: Histogram.Internal<string>; rollback: Histogram.Internal<string> };

  constructor(registry: Registry, poolStats: () => Promise<PoolStats | undefined>) {
    const connections = new Gauge({
      name: 'k12_db_pool_connections',
      help: 'Connections of the database pool: in_use (lent to a transaction) or idle',
      labelNames: ['state'],
      registers: [registry],
      async collect() {
        const stats = await poolStats();
        if (!stats) return;
        this.set({ state: 'in_use' }, stats.total - stats.idle);
        this.set({ state: 'idle' }, stats.idle);
      },
    });
    void connections;
    new Gauge({
      name: 'k12_db_pool_waiting',
      help: 'Requests waiting for a connection of the database pool',
      registers: [registry],
      async collect() {
        const stats = await poolStats();
        if (stats) this.set(stats.waiting);
      },
    });
    new Gauge({
      name: 'k12_db_pool_max',
      help: 'Most connections the database pool opens (DB_POOL_SIZE)',
      registers: [registry],
      async collect() {
        const stats = await poolStats();
        if (stats) this.set(stats.max);
      },
    });
    const duration = new Histogram({
      name: 'k12_tenant_transaction_duration_seconds',
      help: 'Tenant transactions, from the statement that began them to their commit or rollback, seconds',
      labelNames: ['outcome'],
      buckets: [...LATENCY_BUCKETS],
      registers: [registry],
    });
    this.#transactions = { commit: duration.labels({ outcome: 'commit' }), rollback: duration.labels({ outcome: 'rollback' }) };
  }

  transactionFinished(seconds: number, committed: boolean): void {
    (committed ? this.#transactions.commit : this.#transactions.rollback).observe(seconds);
  }
}

/** Why a subgraph fetch failed, as a label. */
export type FetchFailure = 'timeout' | 'connection' | 'too_large' | 'error' | `http_${number}`;

/** The gateway's own metrics: subgraph fetches and the district-status cache. */
export class GatewayMetrics {
  readonly #fetchDuration: Histogram<string>;
  readonly #fetchFailures: Counter<string>;
  readonly #bySubgraph = new Map<string, { duration: Histogram.Internal<string>; failures: Map<string, Counter.Internal> }>();
  readonly #statusLookups: Record<'hit' | 'stale' | 'miss', Counter.Internal>;

  constructor(registry: Registry) {
    this.#fetchDuration = new Histogram({
      name: 'k12_subgraph_fetch_duration_seconds',
      help: 'Fetches of the query plan to one subgraph, successful or not, seconds (a retried fetch counts once)',
      labelNames: ['subgraph'],
      buckets: [...LATENCY_BUCKETS],
      registers: [registry],
    });
    this.#fetchFailures = new Counter({
      name: 'k12_subgraph_fetch_failures_total',
      help: 'Subgraph fetches that failed, by subgraph and reason (http_<status>, timeout, connection, too_large, error)',
      labelNames: ['subgraph', 'reason'],
      registers: [registry],
    });
    const lookups = new Counter({
      name: 'k12_district_status_lookups_total',
      help: 'District-status checks by result: hit (fresh answer), stale (answered while one refresh runs), miss (waited for the directory)',
      labelNames: ['result'],
      registers: [registry],
    });
    this.#statusLookups = {
      hit: lookups.labels({ result: 'hit' }),
      stale: lookups.labels({ result: 'stale' }),
      miss: lookups.labels({ result: 'miss' }),
    };
  }

  /** Records one subgraph fetch; `subgraph` is a registered name (bounded). */
  subgraphFetch(subgraph: string, seconds: number, failure?: FetchFailure): void {
    let series = this.#bySubgraph.get(subgraph);
    if (!series) this.#bySubgraph.set(subgraph, (series = { duration: this.#fetchDuration.labels({ subgraph }), failures: new Map() }));
    series.duration.observe(seconds);
    if (failure === undefined) return;
    let failures = series.failures.get(failure);
    if (!failures) series.failures.set(failure, (failures = this.#fetchFailures.labels({ subgraph, reason: failure })));
    failures.inc();
  }

  districtStatusLookup(result: 'hit' | 'stale' | 'miss'): void {
    this.#statusLookups[result].inc();
  }
}

/** The failure label of an error thrown by a subgraph fetch, from undici's error codes. */
export function fetchFailureOf(error: unknown): FetchFailure {
  const { code, name } = (error ?? {}) as { code?: unknown; name?: unknown };
  if (
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT' ||
    code === 'UND_ERR_CONNECT_TIMEOUT' ||
    name === 'TimeoutError'
  )
    return 'timeout';
  if (typeof code === 'string' && /^(E[A-Z]+|UND_ERR_SOCKET|UND_ERR_CLOSED)$/.test(code)) return 'connection';
  return 'error';
}

/** Where and how one service serves its metrics. */
export interface MetricsSettings {
  /** The metrics listener's port; 0: a free one. */
  port: number;
  topDistricts?: number;
  topOperations?: number;
  windowSeconds?: number;
}

/** The settings of `service` (`gateway` or a subgraph name) from the configuration; undefined when METRICS=off. */
export function metricsSettingsOf(config: Pick<PlatformConfig, 'metrics'>, service: string): MetricsSettings | undefined {
  const { metrics } = config;
  if (!metrics.enabled) return undefined;
  return {
    port: service === 'gateway' ? metrics.gatewayPort : (metrics.subgraphPorts[service] ?? 0),
    topDistricts: metrics.topDistricts,
    topOperations: metrics.topOperations,
    windowSeconds: metrics.windowSeconds,
  };
}
