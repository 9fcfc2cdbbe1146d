/**
 * OpenTelemetry tracing for the gateway and every subgraph (docs/operations.md, Traces). Off unless
 * OTEL_EXPORTER_OTLP_ENDPOINT is set: then each service process traces its HTTP server, its outgoing HTTP
 * (undici), its GraphQL parse/validate/execute and every SQL statement, and batch-exports the spans over
 * OTLP/HTTP. W3C `traceparent` only: neither baggage nor a caller's `tracestate`, which would carry a client's
 * data into the spans and on to the subgraphs.
 *
 * What a span may hold is decided twice: each instrumentation is configured to record no header, no variable
 * value and no SQL value, and the exporter (RedactingSpanExporter) removes, before anything leaves the process,
 * what could still carry one — query strings, SQL literals, status and exception messages, stack traces.
 *
 * Two steps, because the libraries must be hooked before they are imported: `register.ts` (node --import)
 * enables the instrumentations first; the entry point then starts the tracer provider with its service name
 * (`startTracing`) and shuts it down, flushing the last batch, when the service stops.
 */
import { context, propagation, trace, type Attributes, type AttributeValue, type Context, type TextMapGetter } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { registerInstrumentations, type Instrumentation } from '@opentelemetry/instrumentation';
import { GraphQLInstrumentation } from '@opentelemetry/instrumentation-graphql';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  ParentBasedSampler,
  SamplingDecision,
  TracerProvider,
  type ReadableSpan,
  type Sampler,
  type SamplingResult,
  type SpanExporter,
  type TimedEvent,
} from '@opentelemetry/sdk-trace';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import type { TracingConfig } from '../config/config.ts';

/** The attribute naming the caller's district on each service's server span. */
export const DISTRICT_ATTRIBUTE = 'district.id';

/** Health probes are not requests of any district: no spans for them. */
const HEALTH_PATH = /^\/health\//;

/** SQL attributes: the statement text (both semantic-convention generations). */
const STATEMENT_ATTRIBUTES = ['db.query.text', 'db.statement'];
/** URL attributes whose query string may carry a GET request's variables. */
const URL_ATTRIBUTES = ['url.full', 'http.url', 'http.target'];
/** Attributes never exported, whatever an instrumentation records. */
const DROPPED_ATTRIBUTES = new Set(['url.query', 'db.postgresql.values', 'http.user_agent', 'user_agent.original']);
const DROPPED_PREFIXES = ['http.request.header.', 'http.response.header.', 'graphql.variables.'];

/**
 * A SQL statement without its values. MikroORM and the tenant transaction write every value into the SQL text as a
 * literal (client-side interpolation), so the text a pg span would record holds row data and the district's id:
 * string literals (standard and E'' escapes) and numbers become `?`; the statement's shape stays.
 */
export function sanitizeSql(sql: string): string {
  return sql.replace(/(?:\b[eE])?'(?:[^'\\]|''|\\.)*'/g, '?').replace(/(?<![\w$."])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?\b/g, '?');
}

/** A URL or request target without its query string. */
const withoutQuery = (value: string) => value.replace(/\?.*$/s, '');

function redactAttributes(attributes: Attributes): Attributes {
  const kept: Attributes = {};
  for (const [key, value] of Object.entries(attributes)) {
    if (DROPPED_ATTRIBUTES.has(key) || DROPPED_PREFIXES.some((prefix) => key.startsWith(prefix))) continue;
    kept[key] = redactValue(key, value);
  }
  return kept;
}

function redactValue(key: string, value: AttributeValue | undefined): AttributeValue | undefined {
  if (typeof value !== 'string') return value;
  if (STATEMENT_ATTRIBUTES.includes(key)) return sanitizeSql(value);
  if (URL_ATTRIBUTES.includes(key)) return withoutQuery(value);
  return value;
}

/** An exception event keeps its type only: messages can quote a value (a GraphQL coercion error, a PostgreSQL error). */
const redactEvent = (event: TimedEvent): TimedEvent => ({
  ...event,
  attributes: event.attributes?.['exception.type'] === undefined ? {} : { 'exception.type': event.attributes['exception.type'] },
});

/** The span as exported: everything of the original but its attributes, events and status message. */
function redactSpan(span: ReadableSpan): ReadableSpan {
  return Object.create(span, {
    attributes: { value: redactAttributes(span.attributes) },
    events: { value: span.events.map(redactEvent) },
    status: { value: { code: span.status.code } },
  }) as ReadableSpan;
}

/** The last guard before any span leaves the process (see the module comment). */
export class RedactingSpanExporter implements SpanExporter {
  readonly #inner: SpanExporter;
  constructor(inner: SpanExporter) {
    this.#inner = inner;
  }
  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.#inner.export(spans.map(redactSpan), done);
  }
  shutdown(): Promise<void> {
    return this.#inner.shutdown();
  }
  forceFlush(): Promise<void> {
    return this.#inner.forceFlush?.() ?? Promise.resolve();
  }
}

function instrumentations(): Instrumentation[] {
  return [
    new HttpInstrumentation({
      ignoreIncomingRequestHook: (request) => HEALTH_PATH.test(request.url ?? ''),
      // Outgoing HTTP is undici's (subgraph fetches, fetch()), traced below; node:http's client only carries the OTLP export.
      disableOutgoingRequestInstrumentation: true,
      // No header is recorded unless listed here: none is (the token and the tenant context stay out).
      headersToSpanAttributes: {},
    }),
    new UndiciInstrumentation({
      ignoreRequestHook: (request) => HEALTH_PATH.test(request.path),
      headersToSpanAttributes: {},
    }),
    new GraphQLInstrumentation({
      // The operation's source with every literal replaced by `*`, and never its variables.
      allowValues: false,
      // One span per parse, validate and execute, not one per resolved field: cheap enough to leave on.
      ignoreResolveSpans: true,
      mergeItems: true,
    }),
    new PgInstrumentation({
      // Never the bind parameters, and never a statement outside a request's trace (pool warm-up, readiness).
      enhancedDatabaseReporting: false,
      requireParentSpan: true,
      ignoreConnectSpans: true,
      requestHook: (span, { query }) => {
        for (const key of STATEMENT_ATTRIBUTES) span.setAttribute(key, sanitizeSql(query.text));
      },
    }),
  ];
}

/** W3C trace context without the caller's `tracestate` (free text of the client's choosing): the trace id and parent only. */
class TraceParentPropagator extends W3CTraceContextPropagator {
  override extract(parent: Context, carrier: unknown, getter: TextMapGetter): Context {
    const extracted = super.extract(parent, carrier, getter);
    const remote = trace.getSpanContext(extracted);
    return remote?.traceState ? trace.setSpanContext(extracted, { ...remote, traceState: undefined }) : extracted;
  }
}

let instrumented = false;

/**
 * Enables context propagation and the instrumentations. Must run before the traced libraries are imported
 * (telemetry/register.ts, through `node --import`); spans start once `startTracing` has set the provider.
 */
export function enableInstrumentation(): void {
  if (instrumented) return;
  instrumented = true;
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new TraceParentPropagator());
  registerInstrumentations({ instrumentations: instrumentations() });
}

/**
 * Keeps a random share of the traces it is asked about. Random rather than by trace id (TraceIdRatioBasedSampler):
 * a caller chooses its trace id, and could choose ids that are always kept.
 */
class RandomShareSampler implements Sampler {
  readonly #share: number;
  constructor(share: number) {
    this.#share = share;
  }
  shouldSample(): SamplingResult {
    return { decision: Math.random() < this.#share ? SamplingDecision.RECORD_AND_SAMPLED : SamplingDecision.NOT_RECORD };
  }
  toString(): string {
    return `RandomShareSampler{${this.#share}}`;
  }
}

export interface TracingOptions {
  serviceName: string;
  /**
   * True for a service whose callers are our own (a subgraph: the gateway decided for the whole trace). False at the
   * edge (the gateway): a client's `traceparent` gives the trace id and parent, never the decision, so no client
   * can have all its requests traced; the sample ratio decides.
   */
  followCallerSampling: boolean;
}

export interface Tracing {
  /**
   * False when export is on but telemetry/register.ts did not run first (`node --import`): the libraries the
   * entry point imported were not hooked, so few spans or none are recorded. The entry point warns.
   */
  preloaded: boolean;
  /** Exports what is still buffered and stops; spans after this are dropped. */
  shutdown(): Promise<void>;
}

export const TRACING_NOT_PRELOADED =
  'OTEL_EXPORTER_OTLP_ENDPOINT is set but telemetry/register.ts was not loaded first: start with node --import ./telemetry/register.ts (npm scripts do)';

const NO_TRACING: Tracing = { preloaded: true, shutdown: async () => {} };

/**
 * Starts exporting this process's spans as `serviceName` when an OTLP endpoint is configured; otherwise does
 * nothing (no provider: every span is a no-op). Spans are batched (BatchSpanProcessor), so a request pays for
 * recording them, not for sending them.
 */
export function startTracing(config: TracingConfig, { serviceName, followCallerSampling }: TracingOptions): Tracing {
  if (!config.otlpEndpoint) return NO_TRACING;
  const preloaded = instrumented;
  enableInstrumentation();
  const exporter = new OTLPTraceExporter({ url: new URL('v1/traces', withSlash(config.otlpEndpoint)).href });
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: serviceName }),
    sampler: samplerFor(config.sampleRatio, followCallerSampling),
    spanProcessors: [new BatchSpanProcessor({ exporter: new RedactingSpanExporter(exporter), scheduledDelayMillis: config.exportDelayMs })],
  });
  trace.setGlobalTracerProvider(provider);
  return { preloaded, shutdown: () => provider.shutdown() };
}

/** A span within this process follows its parent; a trace that starts here, or at a caller not followed, is kept at the ratio. */
function samplerFor(sampleRatio: number, followCallerSampling: boolean): Sampler {
  const share = new RandomShareSampler(sampleRatio);
  return followCallerSampling
    ? new ParentBasedSampler({ root: share })
    : new ParentBasedSampler({ root: share, remoteParentSampled: share, remoteParentNotSampled: share });
}

const withSlash = (url: string) => (url.endsWith('/') ? url : `${url}/`);

/** Names the caller's district on this service's server span (the active span while a request is handled). */
export function recordDistrict(districtId: string): void {
  trace.getActiveSpan()?.setAttribute(DISTRICT_ATTRIBUTE, districtId);
}
