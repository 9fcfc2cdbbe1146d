/**
 * The gateway's guard on each subgraph fetch (gateway/subgraph-http.ts), against real sockets on 127.0.0.1: a fetch
 * that gets no answer fails at its timeout; after N consecutive failures a subgraph's breaker opens and fetches fail
 * without reaching it; after the half-open delay one probe goes through and, answered, closes the breaker; another
 * subgraph's breaker is untouched; an answer of any status is no failure.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { BrokenCircuitError } from 'cockatiel';
import { afterEach, expect, it } from 'vitest';
import { SubgraphTimeoutError, createSubgraphHttp } from '../../gateway/subgraph-http.ts';
import { freePort } from '../processes/support.ts';
import { waitFor } from '../support/wait.ts';

const QUERY = JSON.stringify({ query: 'query Q__students__0{students{edges{node{id}}}}' });
const answer = (status: number) => `HTTP/1.1 ${status} X\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{"data":{}}`;

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A raw HTTP server that answers each request with `status`, or never when `status` is null; counts connections. */
async function rawServer(status: number | null, port = 0): Promise<{ url: string; connections: () => number }> {
  let connections = 0;
  const server = createServer((socket: Socket) => {
    connections++;
    socket.on('data', (chunk) => {
      if (status !== null && chunk.toString().includes('\r\n\r\n')) socket.write(answer(status));
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  servers.push(server);
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/graphql`, connections: () => connections };
}

it('fails a fetch that gets no answer at its timeout', async () => {
  const silent = await rawServer(null);
  const http = createSubgraphHttp({ faults: { timeoutMs: 300, breakerFailures: 5, breakerHalfOpenMs: 1000 } });
  await expect(http.post(silent.url, { 'content-type': 'application/json' }, QUERY)).rejects.toBeInstanceOf(SubgraphTimeoutError);
  await http.close();
});

it('opens a subgraph breaker after consecutive failures, fails fast, and closes it on an answered probe', async () => {
  const deadPort = await freePort();
  const deadUrl = `http://127.0.0.1:${deadPort}/graphql`;
  const other = await rawServer(503);
  const changes: { url: string; open: boolean }[] = [];
  const http = createSubgraphHttp({
    faults: { timeoutMs: 2000, breakerFailures: 3, breakerHalfOpenMs: 500 },
    onBreakerChange: (change) => changes.push(change),
  });
  const post = (url: string) => http.post(url, { 'content-type': 'application/json' }, QUERY);

  for (let i = 0; i < 3; i++) await expect(post(deadUrl)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  expect(changes).toEqual([{ url: deadUrl, open: true }]);
  // Open: refused before any connection, even once something listens there.
  const revived = await rawServer(200, deadPort);
  await expect(post(deadUrl)).rejects.toBeInstanceOf(BrokenCircuitError);
  expect(revived.connections()).toBe(0);
  // Another subgraph's fetches are untouched, and its 503s (answers) open nothing.
  for (let i = 0; i < 4; i++) expect((await post(other.url)).status).toBe(503);
  // Half-open after the delay: one probe reaches the subgraph and, answered, closes the breaker.
  const probed = await waitFor(
    'the half-open probe',
    () =>
      post(deadUrl).then(
        (response) => response,
        (error: unknown) => {
          if (error instanceof BrokenCircuitError) return undefined;
          throw error;
        },
      ),
    { timeoutMs: 5000, intervalMs: 100 },
  );
  expect(probed.status).toBe(200);
  expect(revived.connections()).toBe(1);
  expect(changes).toEqual([
    { url: deadUrl, open: true },
    { url: deadUrl, open: false },
  ]);
  expect((await post(deadUrl)).status).toBe(200);
  await http.close();
});
