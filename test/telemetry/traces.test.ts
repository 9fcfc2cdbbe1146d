/**
 * Traces across processes: `npm start` (node dev/start.ts) with OTEL_EXPORTER_OTLP_ENDPOINT pointing at an OTLP/HTTP
 * receiver this test runs on 127.0.0.1, one request with a client `traceparent`, then SIGTERM: every service flushes
 * its batch on the way out, and the spans of that request are read back from what the receiver got.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, inject, it } from 'vitest';
import { readRegistry } from '../../config/registry.ts';
import { DISTRICT_ATTRIBUTE, sanitizeSql } from '../../telemetry/tracing.ts';
import { demo } from '../support/platform.ts';
import { dropPrefixedDatabases, freePort, killSpawned, projectFile, spawnNode } from '../processes/support.ts';

const adminUrl = inject('adminUrl');
const prefix = `t_${randomBytes(4).toString('hex')}`;
let dataDir: string | undefined;
let receiver: Server | undefined;

afterAll(async () => {
  killSpawned();
  await new Promise((resolve) => (receiver ? receiver.close(resolve) : resolve(undefined)));
  await dropPrefixedDatabases(adminUrl, prefix);
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** OTLP/JSON: an attribute's value is one of these, by type. */
interface AnyValue {
  stringValue?: string;
  intValue?: number | string;
  boolValue?: boolean;
  doubleValue?: number;
  arrayValue?: { values: AnyValue[] };
}
interface KeyValue {
  key: string;
  value: AnyValue;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: KeyValue[];
  events?: { name: string; attributes?: KeyValue[] }[];
  status?: { code?: number; message?: string };
}
interface ExportRequest {
  resourceSpans: { resource: { attributes: KeyValue[] }; scopeSpans: { spans: OtlpSpan[] }[] }[];
}

const SPAN_KIND = { server: 2, client: 3 } as const;

interface Span extends OtlpSpan {
  service: string;
  attribute(key: string): string | number | boolean | undefined;
}

const plain = (value: AnyValue) => value.stringValue ?? value.intValue ?? value.boolValue ?? value.doubleValue;

/** An OTLP/HTTP receiver (JSON encoding, which the exporter sends by default) keeping every span it is sent. */
async function startReceiver(): Promise<{ url: string; spans: Span[] }> {
  const spans: Span[] = [];
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.url === '/v1/traces') {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ExportRequest;
        for (const { resource, scopeSpans } of body.resourceSpans) {
          const service = String(plain(resource.attributes.find((a) => a.key === 'service.name')!.value));
          for (const { spans: sent } of scopeSpans)
            for (const span of sent)
              spans.push({ ...span, service, attribute: (key) => plain(span.attributes?.find((a) => a.key === key)?.value ?? {}) });
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve) => receiver!.listen(port, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${port}`, spans };
}

async function post(url: string, token: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  return (await response.json()) as { data?: any; errors?: unknown[] };
}

it(
  "links one request's spans across the gateway and subgraph processes under the client's trace, with the district and without any value",
  { timeout: 180_000 },
  async () => {
    const { url: otlpUrl, spans } = await startReceiver();
    dataDir = await mkdtemp(join(tmpdir(), 'k12-traces-'));
    const env: Record<string, string> = {
      DATA_DIR: dataDir,
      DATABASE_URL: adminUrl,
      DB_PREFIX: prefix,
      GATEWAY_PORT: String(await freePort()),
      LOG_LEVEL: 'warn',
      SHUTDOWN_GRACE_MS: '5000',
      OTEL_EXPORTER_OTLP_ENDPOINT: otlpUrl,
      // Nothing is exported on a timer during the test: the spans arrive by the flush each service does on SIGTERM.
      OTEL_BSP_SCHEDULE_DELAY: '600000',
    };
    for (const entry of readRegistry()) env[entry.port.env] = String(await freePort());
    const launcher = spawnNode([projectFile('dev/start.ts')], env);
    await launcher.line(/^Ctrl-C stops the platform\./, 150_000);
    const curl = launcher.lines.find((l) => l.startsWith('curl -s '))!;
    const [, gatewayUrl, token] = /^curl -s (\S+) .*authorization: Bearer ([\w.-]+)'/.exec(curl)!;
    const district = demo('north-valley');

    // A student of the district: its id is the traced request's variable, its name the row data no span may hold.
    const listing = await post(gatewayUrl!, token!, { query: '{ students(first: 1) { edges { node { id lastName } } } }' });
    const student = listing.data.students.edges[0].node as { id: string; lastName: string };

    const traceId = randomBytes(16).toString('hex');
    const clientSpanId = randomBytes(8).toString('hex');
    const traced = await post(
      gatewayUrl!,
      token!,
      {
        query: 'query Traced($id: ID!) { district { name } student(id: $id) { lastName school { name } } }',
        variables: { id: student.id },
      },
      { traceparent: `00-${traceId}-${clientSpanId}-01`, tracestate: 'k12test=client-chosen-state' },
    );
    expect(traced.errors).toBeUndefined();
    expect(traced.data.student.lastName).toBe(student.lastName);

    // A client's "not sampled" flag decides nothing either (OTEL_TRACES_SAMPLE_RATIO does, 1 here): traced all the same.
    const unsampledTraceId = randomBytes(16).toString('hex');
    await post(gatewayUrl!, token!, { query: '{ district { name } }' }, { traceparent: `00-${unsampledTraceId}-${clientSpanId}-00` });

    expect(await launcher.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(spans.filter((s) => s.traceId === unsampledTraceId && s.service === 'gateway' && s.kind === SPAN_KIND.server)).toHaveLength(1);

    const trace = spans.filter((s) => s.traceId === traceId);
    const byId = new Map(trace.map((s) => [s.spanId, s]));
    const servers = (service: string) => trace.filter((s) => s.service === service && s.kind === SPAN_KIND.server);

    // One trace over the three processes the query touches.
    expect(new Set(trace.map((s) => s.service))).toEqual(new Set(['gateway', 'districts', 'students']));

    // The gateway's server span continues the client's span.
    const [gatewayServer, ...moreGatewayServers] = servers('gateway');
    expect(moreGatewayServers).toEqual([]);
    expect(gatewayServer!.parentSpanId).toBe(clientSpanId);

    for (const service of ['districts', 'students']) {
      const serverSpans = servers(service);
      expect(serverSpans.length, `${service} server spans`).toBeGreaterThan(0);
      for (const server of serverSpans) {
        // Each subgraph request is the child of one of the gateway's client (fetch) spans, itself within the gateway's request.
        const fetch = byId.get(server.parentSpanId!);
        expect(fetch, `the gateway span ${service} was called from`).toMatchObject({ service: 'gateway', kind: SPAN_KIND.client });
        expect(fetch!.parentSpanId).toBe(gatewayServer!.spanId);
        expect(server.attribute(DISTRICT_ATTRIBUTE)).toBe(district.tenantId);
      }
      // Its SQL statements, each under one of its server spans.
      const statements = trace.filter((s) => s.service === service && s.attribute('db.system.name') === 'postgresql');
      expect(statements.length, `${service} SQL spans`).toBeGreaterThan(0);
      for (const statement of statements) {
        let ancestor: Span | undefined = statement;
        while (ancestor && ancestor.kind !== SPAN_KIND.server) ancestor = byId.get(ancestor.parentSpanId ?? '');
        expect(serverSpans).toContain(ancestor);
      }
    }
    expect(gatewayServer!.attribute(DISTRICT_ATTRIBUTE)).toBe(district.tenantId);

    // Statements are recorded without their values: the student's id the students service looked up is not in them.
    const studentsSql = trace
      .filter((s) => s.service === 'students')
      .map((s) => s.attribute('db.query.text'))
      .filter((text) => typeof text === 'string');
    expect(studentsSql.some((text) => /select .* from "student"/i.test(String(text)))).toBe(true);

    // Nothing anywhere (every span the receiver got, not only this trace's) holds the token, a tenant context or
    // any other signed JWT, the variable's value, row data, or the client's tracestate.
    const everything = JSON.stringify(spans);
    expect(everything).toContain(traceId);
    expect(everything).not.toContain('client-chosen-state');
    expect(everything).not.toContain(token);
    expect(everything).not.toMatch(/eyJ[\w-]+\.[\w-]+/);
    expect(everything).not.toContain(student.id);
    expect(everything).not.toContain(student.lastName);
  },
);

it('records a SQL statement without its literals', () => {
  expect(
    sanitizeSql(
      `begin read only; select set_config('app.current_tenant', '3f6c1a52-9a7e-4c1e-8f0a-1b2c3d4e5f60', true); ` +
        `select "s0"."first_name" from "student" as "s0" where "s0"."id" = 'O''Brien' and "grade" >= -1 and gpa < 3.5 ` +
        `and note = E'a\\'b' limit 21 offset $1`,
    ),
  ).toBe(
    `begin read only; select set_config(?, ?, true); select "s0"."first_name" from "student" as "s0" where "s0"."id" = ? ` +
      `and "grade" >= ? and gpa < ? and note = ? limit ? offset $1`,
  );
});
