/** A static file server (node:http) for pages the browser tests load from an origin of their own. */
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
};

export interface StaticServer {
  /** The origin the files are served from, e.g. `http://127.0.0.1:5173`. */
  origin: string;
  close(): Promise<void>;
}

/** Serves `root` (GET only; `/` is index.html) on `host:port`; a path outside `root` or missing answers 404. */
export async function serveStatic(root: string, port: number, host = '127.0.0.1'): Promise<StaticServer> {
  const server = createServer((request, response) => {
    const path = decodeURIComponent(new URL(request.url ?? '/', 'http://static').pathname);
    const file = normalize(join(root, path === '/' ? 'index.html' : path));
    if (request.method !== 'GET' || !file.startsWith(root + sep)) {
      response.writeHead(request.method === 'GET' ? 404 : 405).end();
      return;
    }
    readFile(file).then(
      (body) => response.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(body),
      () => response.writeHead(404).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  return {
    origin: `http://${host}:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
