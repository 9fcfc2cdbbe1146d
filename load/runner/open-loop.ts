/**
 * Open-model load: request i is due at start + i / rate, whether or not earlier requests have answered,
 * so a slow server faces a growing number of requests in flight instead of a politely slowed client.
 * Closed-loop tools (autocannon: N connections, each waits for its answer) cannot do this, so arrivals
 * are driven by this timer and each request is sent with undici (MIT, Node's own HTTP client) over a
 * keep-alive pool that opens more connections whenever all are busy.
 */
import { Pool, errors as undiciErrors } from 'undici';
import { graphqlErrorCode, type PlannedRequest } from '../scenarios/scenario.ts';
import type { Outcome } from './report.ts';

export interface OpenLoopOptions {
  target: string;
  rate: number;
  durationSeconds: number;
  timeoutMs: number;
  next: () => PlannedRequest;
  onOutcome: (outcome: Outcome) => void;
  /** How late each request left against its schedule, ms. */
  onLag?: (lagMs: number) => void;
  /** Called about once a second with the requests sent and still in flight. */
  onTick?: (sent: number, inFlight: number) => void;
  /** Most connections at once; beyond that requests queue in the client (and the wait counts as latency). */
  maxConnections?: number;
}

function errorKind(error: unknown): string {
  if (
    error instanceof undiciErrors.HeadersTimeoutError ||
    error instanceof undiciErrors.BodyTimeoutError ||
    (error as Error)?.name === 'TimeoutError'
  )
    return 'timeout';
  const code = (error as { code?: string })?.code;
  return `network_${code ?? 'error'}`;
}

/** Resolves when every request has answered; `sendingSeconds` is how long the arrivals took to send. */
export async function runOpenLoop(options: OpenLoopOptions): Promise<{ sendingSeconds: number }> {
  const url = new URL(options.target);
  const pool = new Pool(url.origin, {
    connections: options.maxConnections ?? 512,
    keepAliveTimeout: 30_000,
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
  });
  const path = `${url.pathname}${url.search}`;
  const total = Math.round(options.rate * options.durationSeconds);
  const intervalMs = 1000 / options.rate;
  const inFlight = new Set<Promise<void>>();
  let sent = 0;

  async function send(request: PlannedRequest, dueAt: number, start: number): Promise<void> {
    let error: string | null;
    try {
      const response = await pool.request({
        path,
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${request.district.token}` },
        body: request.body,
        signal: AbortSignal.timeout(options.timeoutMs),
      });
      const text = await response.body.text();
      const code = response.statusCode >= 400 ? null : graphqlErrorCode(text);
      error = response.statusCode >= 400 ? `http_${response.statusCode}` : code && `graphql_${code}`;
    } catch (caught) {
      error = errorKind(caught);
    }
    options.onOutcome({
      sentAtMs: dueAt,
      latencyMs: performance.now() - start,
      district: request.district.slug,
      operation: request.operation,
      error,
    });
  }

  const startedAt = performance.now();
  let lastTick = startedAt;
  await new Promise<void>((resolve) => {
    const pump = () => {
      const now = performance.now();
      // Send everything that is due; a late timer sends the backlog at once rather than dropping it.
      while (sent < total && startedAt + sent * intervalMs <= now) {
        const dueAt = sent * intervalMs;
        const request = options.next();
        const start = performance.now();
        options.onLag?.(start - startedAt - dueAt);
        const flight = send(request, dueAt, start).finally(() => inFlight.delete(flight));
        inFlight.add(flight);
        sent++;
      }
      if (now - lastTick >= 1000) {
        lastTick = now;
        options.onTick?.(sent, inFlight.size);
      }
      if (sent >= total) return resolve();
      setTimeout(pump, Math.max(0, startedAt + sent * intervalMs - performance.now()));
    };
    pump();
  });
  const sendingSeconds = (performance.now() - startedAt) / 1000;
  await Promise.all(inFlight);
  await pool.close();
  return { sendingSeconds };
}
