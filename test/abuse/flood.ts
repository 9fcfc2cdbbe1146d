/**
 * The flood's client, in a process of its own (as an attacker's would be): `node test/abuse/flood.ts` with
 * FLOOD_URL, FLOOD_TOKEN, FLOOD_BODY and FLOOD_COUNT. It opens FLOOD_COUNT connections first and then writes one
 * request on each at the same moment, so that they really arrive at once (an HTTP client would spread them over
 * its connection set-up), and prints one JSON array with each response's status, Retry-After, error code and
 * whether it carried data.
 */
import { connect, type Socket } from 'node:net';

const { FLOOD_URL, FLOOD_TOKEN, FLOOD_BODY, FLOOD_COUNT } = process.env;
if (!FLOOD_URL || !FLOOD_TOKEN || !FLOOD_BODY || !FLOOD_COUNT)
  throw new Error('FLOOD_URL, FLOOD_TOKEN, FLOOD_BODY and FLOOD_COUNT are required');
const url = new URL(FLOOD_URL);
const request = [
  `POST ${url.pathname} HTTP/1.1`,
  `host: ${url.host}`,
  'content-type: application/json',
  `authorization: Bearer ${FLOOD_TOKEN}`,
  `content-length: ${Buffer.byteLength(FLOOD_BODY)}`,
  'connection: close',
  '',
  FLOOD_BODY,
].join('\r\n');

const open = () =>
  new Promise<Socket>((resolve, reject) => {
    const socket = connect({ host: url.hostname, port: Number(url.port) }, () => resolve(socket));
    socket.once('error', reject);
  });

/** The whole response (the server closes the connection after it); de-chunked when sent chunked. */
const exchange = (socket: Socket) =>
  new Promise<{ status: number; retryAfter: string | null; code: string | null; hasData: boolean }>((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.once('error', reject);
    socket.once('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const [head, ...rest] = raw.split('\r\n\r\n');
      let body = rest.join('\r\n\r\n');
      if (/^transfer-encoding: chunked$/im.test(head!)) {
        let decoded = '';
        for (let at = 0; ;) {
          const eol = body.indexOf('\r\n', at);
          const size = parseInt(body.slice(at, eol), 16);
          if (!size) break;
          decoded += body.slice(eol + 2, eol + 2 + size);
          at = eol + 2 + size + 2;
        }
        body = decoded;
      }
      const parsed = JSON.parse(body) as { errors?: { extensions?: { code?: string } }[]; data?: unknown };
      resolve({
        status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head!)?.[1]),
        retryAfter: /^retry-after: (.*)$/im.exec(head!)?.[1] ?? null,
        code: parsed.errors?.[0]?.extensions?.code ?? null,
        hasData: Boolean(parsed.data),
      });
    });
  });

const sockets = await Promise.all(Array.from({ length: Number(FLOOD_COUNT) }, open));
const responses = sockets.map((socket) => exchange(socket).catch((error: Error) => ({ status: 0, error: error.message })));
for (const socket of sockets) socket.write(request);
process.stdout.write(`${JSON.stringify(await Promise.all(responses))}\n`);
