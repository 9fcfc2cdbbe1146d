/**
 * The gateway's HTTP to its subgraphs: undici's request API over one keep-alive agent. Node's global fetch
 * is the same undici behind WHATWG streams and costs about 0.5 ms more per call on our 2-core machines
 * (measured: 0.83 ms vs 0.30 ms for a loopback round trip), paid on every subgraph fetch of every request.
 */
import { Agent, request } from 'undici';

/** What Apollo's RemoteGraphQLDataSource reads of a fetch response (status, headers, json/text). */
export interface SubgraphResponse {
  ok: boolean;
  status: number;
  statusText: string;
  url: string;
  redirected: boolean;
  bodyUsed: boolean;
  headers: Headers;
  text(): Promise<string>;
  json(): Promise<unknown>;
  clone(): SubgraphResponse;
}

export interface SubgraphHttp {
  post(url: string, headers: Record<string, string>, body: string, timeoutMs?: number): Promise<SubgraphResponse>;
  /** A fetch-compatible function for RemoteGraphQLDataSource's `fetcher`. */
  fetcher(url: string, init: { method?: string; headers?: Record<string, string>; body?: string }): Promise<SubgraphResponse>;
  close(): Promise<void>;
}

function responseOf(url: string, status: number, rawHeaders: Record<string, string | string[] | undefined>, text: string): SubgraphResponse {
  const headers = new Headers();
  for (const [name, value] of Object.entries(rawHeaders)) {
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else if (value !== undefined) headers.set(name, value);
  }
  const response: SubgraphResponse = {
    ok: status >= 200 && status < 300,
    status,
    statusText: '',
    url,
    redirected: false,
    bodyUsed: false,
    headers,
    text: async () => text,
    json: async () => JSON.parse(text),
    clone: () => responseOf(url, status, rawHeaders, text),
  };
  return response;
}

/** A subgraph answered with more than the response-size cap; reading stopped there. */
export class SubgraphResponseTooLargeError extends Error {}

async function readText(body: AsyncIterable<Buffer> & { destroy(): void }, maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > maxBytes) {
      body.destroy();
      throw new SubgraphResponseTooLargeError(`subgraph response over ${maxBytes} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function createSubgraphHttp(options: { timeoutMs?: number; maxResponseBytes?: number } = {}): SubgraphHttp {
  // Long-lived connections; the subgraphs keep theirs open longer (kit/http.ts keepAliveTimeout).
  const agent = new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 60_000 });
  const timeoutMs = options.timeoutMs ?? 30_000;
  const maxBytes = options.maxResponseBytes ?? Infinity;
  const send = async (url: string, method: string, headers: Record<string, string>, body: string | undefined, timeout: number) => {
    const response = await request(url, { method: method as 'POST', headers, body, dispatcher: agent, headersTimeout: timeout, bodyTimeout: timeout });
    return responseOf(url, response.statusCode, response.headers, await readText(response.body, maxBytes));
  };
  return {
    post: (url, headers, body, timeout = timeoutMs) => send(url, 'POST', headers, body, timeout),
    fetcher: (url, init) => send(url, init.method ?? 'POST', init.headers ?? {}, init.body, timeoutMs),
    close: () => agent.close(),
  };
}
