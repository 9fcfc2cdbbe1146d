/**
 * The HTTP edge shared by the gateway and the subgraphs: health routes, a bounded JSON body reader,
 * the bridge to Apollo's `executeHTTPGraphQLRequest`, and error bodies that never carry a stack.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { HeaderMap, type HTTPGraphQLRequest, type HTTPGraphQLResponse } from '@apollo/server';
import cors from 'cors';
import type { Logger } from 'pino';
import type { RequestObservation, ServiceMetrics } from '../telemetry/metrics.ts';

export const MAX_BODY_BYTES = 1024 * 1024;
const GRAPHQL_PATH = '/graphql';
/** How long close() lets in-flight requests finish unless told otherwise. */
export const DEFAULT_GRACE_MS = 10_000;

/** A refusal before any GraphQL work: its message is shown to the caller, so it must be short and safe. */
export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string>;
  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    // No stack: a refusal is answered, never logged with one, and a flood of them (429s) should cost little.
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message);
    Error.stackTraceLimit = stackTraceLimit;
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

/** The code of every refusal for exceeding an operation limit (http/operation-limits.ts) or the response size. */
export const OPERATION_LIMIT_EXCEEDED = 'OPERATION_LIMIT_EXCEEDED';

export const responseTooLarge = (maxBytes: number) =>
  new HttpError(400, OPERATION_LIMIT_EXCEEDED, `Response size limit of ${maxBytes} bytes exceeded; ask for fewer fields or smaller pages`);

export const unauthenticated = (reason: string) => new HttpError(401, 'UNAUTHENTICATED', reason);

export interface GraphQLHttpOptions {
  name: string;
  port: number;
  host?: string;
  logger: Logger;
  /**
   * Executes one GraphQL request, or throws HttpError to refuse it. What it learns of the request (district,
   * operation, a GraphQL error's code) it notes in `observation`, recorded with the request's latency when it ends.
   */
  handle(request: HTTPGraphQLRequest, incoming: IncomingMessage, observation: RequestObservation): Promise<HTTPGraphQLResponse>;
  /** True when this process can serve traffic (its dependencies answer). */
  ready(): Promise<boolean>;
  /** SO_REUSEPORT: another process may listen on the same port (a replacement replica; Linux). */
  reusePort?: boolean;
  /** A GraphQL response body longer than this is replaced by a 400 (the last guard behind the operation limits). */
  maxResponseBytes?: number;
  /** Origins whose browser pages may call /graphql (CORS); absent or empty: no cross-origin access. */
  corsOrigins?: readonly string[];
  /** A whole HTML page served on GET /graphql to a browser (Accept: text/html), without calling `handle`. */
  explorerPage?: string;
  /** Records every GraphQL request, and serves the registry on a listener of its own (port 0: a free one). */
  metrics?: { service: ServiceMetrics; port: number };
}

/** Request headers a page may send cross-origin: the token, JSON, Apollo's CSRF header, W3C trace context. */
export const CORS_ALLOWED_HEADERS = ['authorization', 'content-type', 'apollo-require-preflight', 'traceparent'];
/** How long a browser may reuse a preflight's answer (Chromium caps it at 7200 s). */
export const CORS_MAX_AGE_SECONDS = 600;

type Middleware = (req: IncomingMessage, res: ServerResponse, next: () => void) => void;

/**
 * The `cors` package, for the origins listed only: any other origin gets no CORS header at all (the origin callback
 * answering false makes it skip the request). A preflight is answered 204 here, before any token check.
 */
function corsMiddleware(origins: readonly string[]): Middleware | undefined {
  if (origins.length === 0) return undefined;
  const allowed = new Set(origins);
  return cors({
    origin: (origin, callback) => callback(null, origin !== undefined && allowed.has(origin)),
    methods: ['GET', 'POST'],
    allowedHeaders: CORS_ALLOWED_HEADERS,
    // A 429's Retry-After is for the page's code to read.
    exposedHeaders: ['retry-after'],
    maxAge: CORS_MAX_AGE_SECONDS,
    optionsSuccessStatus: 204,
    preflightContinue: false,
  }) as Middleware;
}

/** Runs the CORS middleware; true when it answered the request itself (an allowed preflight). */
const applyCors = (middleware: Middleware, req: IncomingMessage, res: ServerResponse) =>
  new Promise<boolean>((resolve) => {
    // The origin callback never fails, so the middleware passes no error on.
    middleware(req, res, () => resolve(false));
    if (res.writableEnded) resolve(true);
  });

/**
 * The explorer page's own headers: it may connect to this origin only (its assets are inlined; Monaco's workers are
 * blob: URLs), and no other site may frame it.
 */
const EXPLORER_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-cache',
  'x-content-type-options': 'nosniff',
  'content-security-policy':
    "default-src 'none'; script-src 'unsafe-inline' blob:; worker-src blob:; style-src 'unsafe-inline'; " +
    "img-src data: blob:; font-src data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
};

export interface RunningServer {
  url: string;
  port: number;
  /** Where Prometheus scrapes this service (its own listener), when it has metrics. */
  metricsUrl?: string;
  /**
   * Drains: stops accepting connections, answers 503 on /health/ready, lets in-flight requests finish (their
   * responses close the connection), closes idle keep-alive connections, and after `graceMs` cuts what is left.
   */
  close(graceMs?: number): Promise<void>;
}

export async function listen(options: GraphQLHttpOptions): Promise<RunningServer> {
  let draining = false;
  const edge: Edge = {
    cors: corsMiddleware(options.corsOrigins ?? []),
    explorerPage: options.explorerPage === undefined ? undefined : explorerPageBodies(options.explorerPage),
  };
  const inFlight = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    inFlight.add(res);
    res.once('close', () => {
      inFlight.delete(res);
      // A drained connection that kept its keep-alive (headers already sent when draining began) is idle now.
      if (draining) server.closeIdleConnections();
    });
    if (draining) res.setHeader('connection', 'close');
    route(options, edge, () => draining, req, res).catch((error: unknown) => {
      options.logger.error({ err: error }, 'unhandled request error');
      if (!res.headersSent) sendError(res, 500, 'INTERNAL_SERVER_ERROR', 'Internal server error');
      else res.destroy();
    });
  });
  // Longer than the gateway's client keep-alive, so pooled connections are not cut mid-request.
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        error.code === 'EADDRINUSE'
          ? new Error(
              `${options.name}: port ${options.port} is already in use; choose another in the environment (see README, Configuration)`,
            )
          : error,
      ),
    );
    // A deep accept queue: bursts of a thousand new connections must queue, not be reset.
    server.listen({ port: options.port, host: options.host ?? '127.0.0.1', backlog: 4096, reusePort: options.reusePort ?? false }, () =>
      resolve(),
    );
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host && options.host !== '0.0.0.0' ? options.host : '127.0.0.1';
  const metricsServer = await options.metrics?.service.serve(options.metrics.port, options.host).catch(async (error: unknown) => {
    server.close();
    server.closeAllConnections();
    throw error;
  });
  if (metricsServer) options.logger.info({ url: metricsServer.url }, `${options.name} metrics ready`);
  return {
    url: `http://${host}:${port}${GRAPHQL_PATH}`,
    port,
    metricsUrl: metricsServer?.url,
    close: (graceMs = DEFAULT_GRACE_MS) =>
      new Promise<void>((resolve) => {
        draining = true;
        for (const res of inFlight) if (!res.headersSent) res.setHeader('connection', 'close');
        const cut = setTimeout(() => {
          if (inFlight.size)
            options.logger.warn({ requests: inFlight.size, graceMs }, 'grace period over: closing connections with requests in flight');
          server.closeAllConnections();
        }, graceMs);
        server.close(() => {
          clearTimeout(cut);
          // Scraped until the last request is answered, so the final counts are seen.
          void (metricsServer ? metricsServer.close() : Promise.resolve()).then(resolve);
        });
        // server.close() stops accepting and closes the connections idle now; busy ones close after their response.
        server.closeIdleConnections();
      }),
  };
}

interface Edge {
  cors?: Middleware;
  explorerPage?: ExplorerPageBodies;
}

interface ExplorerPageBodies {
  plain: string;
  /**
   * The page gzipped (9 MB → about a quarter), made on the first request that accepts it, off the event loop (it
   * takes a few hundred ms).
   */
  gzipped(): Promise<Buffer>;
}

const gzipAsync = promisify(gzip);

function explorerPageBodies(plain: string): ExplorerPageBodies {
  let gzipped: Promise<Buffer> | undefined;
  return { plain, gzipped: () => (gzipped ??= gzipAsync(plain)) };
}

async function sendExplorerPage(req: IncomingMessage, res: ServerResponse, page: ExplorerPageBodies): Promise<void> {
  if (/\bgzip\b/.test(req.headers['accept-encoding'] ?? '')) {
    const body = await page.gzipped();
    res.writeHead(200, { ...EXPLORER_HEADERS, 'content-encoding': 'gzip', vary: 'accept-encoding' });
    res.end(body);
    return;
  }
  res.writeHead(200, { ...EXPLORER_HEADERS, vary: 'accept-encoding' });
  res.end(page.plain);
}

async function route(
  options: GraphQLHttpOptions,
  edge: Edge,
  draining: () => boolean,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  // The GraphQL path itself (every POST) needs no URL parsing; anything else is parsed and normalised.
  const url = req.url === GRAPHQL_PATH ? { pathname: GRAPHQL_PATH, search: '' } : new URL(req.url ?? '/', 'http://localhost');
  if (url.pathname === '/health/live') return sendJson(res, 200, { status: 'ok', service: options.name });
  if (url.pathname === '/health/ready') {
    if (draining()) return sendJson(res, 503, { status: 'draining', service: options.name });
    const ready = await options.ready().catch(() => false);
    return sendJson(res, ready ? 200 : 503, { status: ready ? 'ready' : 'unavailable', service: options.name });
  }
  if (url.pathname !== GRAPHQL_PATH) return sendError(res, 404, 'NOT_FOUND', 'Not found');
  // Only a request with an Origin (a browser's cross-origin one) costs any CORS work.
  if (edge.cors && req.headers.origin !== undefined && (await applyCors(edge.cors, req, res))) return;
  if (edge.explorerPage !== undefined && url.pathname === GRAPHQL_PATH && req.method === 'GET' && req.headers.accept?.includes('text/html'))
    return sendExplorerPage(req, res, edge.explorerPage);
  if (req.method !== 'POST' && req.method !== 'GET') {
    res.setHeader('allow', 'GET, POST');
    return sendError(res, 405, 'METHOD_NOT_ALLOWED', 'Use GET or POST');
  }
  const metrics = options.metrics?.service;
  if (!metrics) return void (await serveGraphQL(options, req, res, url.search, {}));
  const startedAt = performance.now();
  const observation: RequestObservation = {};
  let errorCode: string | undefined;
  try {
    errorCode = await serveGraphQL(options, req, res, url.search, observation);
  } catch (error) {
    errorCode = 'INTERNAL_SERVER_ERROR';
    throw error;
  } finally {
    metrics.requestFinished(observation, (performance.now() - startedAt) / 1000, errorCode ?? observation.errorCode);
  }
}

/** Runs one GraphQL request and answers it; returns the code of a refusal it answered (HttpError), if any. */
async function serveGraphQL(
  options: GraphQLHttpOptions,
  req: IncomingMessage,
  res: ServerResponse,
  search: string,
  observation: RequestObservation,
): Promise<string | undefined> {
  const headers = new HeaderMap();
  for (const [key, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(', ') : value);
  }
  let response: HTTPGraphQLResponse;
  try {
    const body = req.method === 'POST' ? await readJsonBody(req) : undefined;
    response = await options.handle({ method: req.method === 'GET' ? 'GET' : 'POST', headers, search, body }, req, observation);
  } catch (error) {
    if (error instanceof HttpError) return refuse(res, error);
    throw error;
  }
  const maxBytes = options.maxResponseBytes ?? Infinity;
  // A UTF-8 byte is at most one UTF-16 unit, and a unit at most three bytes: count bytes only when it can matter.
  if (
    response.body.kind === 'complete' &&
    response.body.string.length * 3 > maxBytes &&
    Buffer.byteLength(response.body.string) > maxBytes
  ) {
    return refuse(res, responseTooLarge(maxBytes));
  }
  res.statusCode = response.status ?? 200;
  for (const [key, value] of response.headers) res.setHeader(key, value);
  if (response.body.kind === 'complete') {
    res.end(response.body.string);
    return undefined;
  }
  let sent = 0;
  for await (const chunk of response.body.asyncIterator) {
    sent += Buffer.byteLength(chunk);
    // Headers are gone by now: cutting the connection is the only refusal left.
    if (sent > maxBytes) {
      res.destroy();
      return OPERATION_LIMIT_EXCEEDED;
    }
    res.write(chunk);
  }
  res.end();
  return undefined;
}

function refuse(res: ServerResponse, error: HttpError): string {
  sendHttpError(res, error);
  return error.code;
}

function sendHttpError(res: ServerResponse, error: HttpError): void {
  if (error.status === 401) res.setHeader('www-authenticate', 'Bearer error="invalid_token"');
  // The rest of an oversized body is not read: the connection closes after the answer instead of draining it.
  if (error.status === 413) res.setHeader('connection', 'close');
  for (const [name, value] of Object.entries(error.headers)) res.setHeader(name, value);
  sendError(res, error.status, error.code, error.message);
}

/**
 * The body as text, at most MAX_BODY_BYTES. Listeners rather than an async iterator, which costs a promise per chunk.
 */
function readText(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) return void chunks.push(chunk);
      // The rest is not read: the answer closes the connection (sendHttpError).
      req.off('data', onData);
      req.pause();
      reject(new HttpError(413, 'PAYLOAD_TOO_LARGE', 'Request body too large'));
    };
    req.on('data', onData);
    req.once('end', () => resolve(chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8')));
    req.once('error', reject);
    // A client gone before the end (no 'error' then): settle rather than wait forever; a settled promise ignores it.
    req.once('close', () => req.readableEnded || reject(new Error('request closed before its body ended')));
  });
}

async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_BODY_BYTES) throw new HttpError(413, 'PAYLOAD_TOO_LARGE', 'Request body too large');
  const text = await readText(req);
  const contentType = req.headers['content-type'] ?? '';
  if (!contentType.includes('json')) return text;
  if (text === '') throw new HttpError(400, 'BAD_REQUEST', 'Request body is empty');
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, 'BAD_REQUEST', 'Request body is not valid JSON');
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.statusCode = status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('cache-control', 'no-store');
  res.end(JSON.stringify(body));
}

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  sendJson(res, status, { errors: [{ message, extensions: { code } }] });
}
