/**
 * The gateway's subgraph HTTP retries a fetch once on a connection error before any response — for a query
 * always, for a possible write only when the request never left — against real sockets on 127.0.0.1.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { connectionFailureOf, createSubgraphHttp, isQueryBody, type ConnectionFailure } from '../../gateway/subgraph-http.ts';
import { freePort } from './support.ts';

const QUERY = JSON.stringify({ query: 'query Students__students__0{students{edges{node{id}}}}' });
const MUTATION = JSON.stringify({
  query: 'mutation Enroll__students__0($input:EnrollStudentInput!){enrollStudent(input:$input){id}}',
  variables: { input: {} },
});
const OK = 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{"data":{}}';

/**
 * A raw HTTP server whose n-th request (from 1) gets `behaviour(n)`: answered, reset before any response,
 * or reset after the response headers. Records each request's headers.
 */
async function rawServer(
  behaviour: (n: number) => 'answer' | 'reset' | 'reset-mid-response',
  port = 0,
): Promise<{ server: Server; url: string; requests: string[] }> {
  const requests: string[] = [];
  const server = createServer((socket: Socket) => {
    let buffered = '';
    socket.on('data', (chunk) => {
      buffered += chunk.toString();
      // Enough for these small bodies: headers and body arrive together on loopback.
      if (!buffered.includes('\r\n\r\n')) return;
      requests.push(buffered);
      buffered = '';
      const action = behaviour(requests.length);
      if (action === 'answer') socket.write(OK);
      else if (action === 'reset') socket.resetAndDestroy();
      else {
        socket.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"da');
        setTimeout(() => socket.resetAndDestroy(), 20);
      }
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  servers.push(server);
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}/graphql`, requests };
}

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

function client() {
  const retries: { failure: ConnectionFailure; code: string }[] = [];
  let renewals = 0;
  const http = createSubgraphHttp({
    timeoutMs: 5000,
    async renewHeaders(headers) {
      renewals++;
      return { ...headers, 'x-tenant-context': `renewed-${renewals}` };
    },
    onRetry: ({ failure, code }) => retries.push({ failure, code }),
  });
  return { http, retries, renewals: () => renewals };
}

describe('subgraph fetch retry', () => {
  it('sends a query that met a reset before any response once more, with a renewed context, and returns that answer', async () => {
    const { url, requests } = await rawServer((n) => (n === 1 ? 'reset' : 'answer'));
    const { http, retries, renewals } = client();
    const response = await http.post(url, { 'content-type': 'application/json', 'x-tenant-context': 'first' }, QUERY);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ data: {} });
    expect(requests).toHaveLength(2);
    expect(requests[0]).toContain('x-tenant-context: first');
    expect(requests[1]).toContain('x-tenant-context: renewed-1');
    expect(retries).toEqual([{ failure: 'maybe-sent', code: 'ECONNRESET' }]);
    expect(renewals()).toBe(1);
    await http.close();
  });

  it('answers the error of a mutation that met a reset after it was sent, and never sends it twice', async () => {
    const { url, requests } = await rawServer(() => 'reset');
    const { http, retries } = client();
    await expect(http.post(url, { 'content-type': 'application/json' }, MUTATION)).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect(requests).toHaveLength(1);
    expect(retries).toEqual([]);
    await http.close();
  });

  it('sends a mutation again when its first connection was refused (it provably never left)', async () => {
    const port = await freePort();
    let requests: string[] = [];
    const http = createSubgraphHttp({
      timeoutMs: 5000,
      // The server appears only now, between the refused attempt and the retry.
      async renewHeaders(headers) {
        requests = (await rawServer(() => 'answer', port)).requests;
        return headers;
      },
    });
    const response = await http.post(`http://127.0.0.1:${port}/graphql`, { 'content-type': 'application/json' }, MUTATION);
    expect(response.status).toBe(200);
    expect(requests).toHaveLength(1);
    expect(requests[0]).toContain('enrollStudent');
    await http.close();
  });

  it('does not send a query again once its response has begun', async () => {
    const { url, requests } = await rawServer(() => 'reset-mid-response');
    const { http, retries } = client();
    await expect(http.post(url, { 'content-type': 'application/json' }, QUERY)).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect(requests).toHaveLength(1);
    expect(retries).toEqual([]);
    await http.close();
  });

  it('tells queries from possible writes by the operation the gateway wrote, and connection failures by stage', () => {
    expect(isQueryBody(QUERY)).toBe(true);
    expect(isQueryBody(JSON.stringify({ query: '{ district { status } }' }))).toBe(true);
    expect(isQueryBody(MUTATION)).toBe(false);
    // Anything not in the gateway's shape counts as a possible write.
    expect(isQueryBody(JSON.stringify({ variables: {}, query: 'query { a }' }))).toBe(false);
    expect(isQueryBody(JSON.stringify({ query: ' mutation { a }' }))).toBe(false);
    expect(isQueryBody(undefined)).toBe(false);

    expect(connectionFailureOf({ code: 'ECONNREFUSED', syscall: 'connect' })).toBe('not-sent');
    expect(connectionFailureOf({ code: 'ECONNRESET', syscall: 'connect' })).toBe('not-sent');
    expect(connectionFailureOf({ code: 'ECONNRESET', syscall: 'read' })).toBe('maybe-sent');
    expect(connectionFailureOf({ code: 'UND_ERR_SOCKET' })).toBe('maybe-sent');
    expect(connectionFailureOf({ code: 'UND_ERR_HEADERS_TIMEOUT' })).toBeUndefined();
    expect(connectionFailureOf(new Error('no code'))).toBeUndefined();
  });
});
