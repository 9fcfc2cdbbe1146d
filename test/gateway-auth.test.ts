/** The gateway refuses every bad caller token with a short 401 reason: never a stack, never the token. */
import { randomBytes } from 'node:crypto';
import { request, type IncomingHttpHeaders } from 'node:http';
import { SignJWT, UnsecuredJWT, generateKeyPair, importJWK, type CryptoKey, type JWTHeaderParameters } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_BODY_BYTES } from '../http/server.ts';
import { demo, startTestPlatform, type TestPlatform } from './support/platform.ts';

let platform: TestPlatform;
let devKey: CryptoKey;
beforeAll(async () => {
  platform = await startTestPlatform();
  devKey = (await importJWK(platform.keys.devIssuer.privateJwk, 'ES256')) as CryptoKey;
});
afterAll(() => platform?.stop());

const NORTH = demo('north-valley').tenantId;
const SOUTH = demo('south-ridge').tenantId;
const DISTRICT = '{ district { id } }';
const now = () => Math.floor(Date.now() / 1000);

interface Craft {
  /** Claims merged over a valid set; `undefined` removes one. */
  claims?: Record<string, unknown>;
  header?: Partial<JWTHeaderParameters>;
  key?: CryptoKey | Uint8Array;
}

/** A token that is valid unless the overrides say otherwise. */
async function craft({ claims = {}, header = {}, key = devKey }: Craft = {}): Promise<string> {
  const { auth } = platform;
  const payload: Record<string, unknown> = {
    iss: auth.issuer,
    aud: auth.audience,
    sub: 'auth-test',
    iat: now(),
    exp: now() + 3600,
    [auth.tenantClaim]: NORTH,
    ...claims,
  };
  for (const name of Object.keys(payload)) if (payload[name] === undefined) delete payload[name];
  return new SignJWT(payload)
    .setProtectedHeader({ alg: 'ES256', kid: platform.keys.devIssuer.privateJwk.kid, typ: 'JWT', ...header })
    .sign(key);
}
const tenant = (value: unknown) => ({ claims: { [platform.auth.tenantClaim]: value } });
const bearer = async (token: string | Promise<string>) => `Bearer ${await token}`;

/** POSTs to the gateway with exactly the given Authorization header (none when undefined). */
async function send(
  authorization: string | undefined,
  body: string = JSON.stringify({ query: DISTRICT }),
  extra: Record<string, string> = {},
) {
  const response = await fetch(platform.gateway.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(authorization === undefined ? {} : { authorization }), ...extra },
    body,
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, body: JSON.parse(text) };
}

function expectNoLeak(text: string, secret?: string) {
  expect(text).not.toMatch(/\bat \S+/);
  expect(text).not.toMatch(/\.ts:/);
  expect(text).not.toMatch(/\.js:\d/);
  if (!secret) return;
  expect(text).not.toContain(secret);
  for (const part of secret.split('.')) if (part.length >= 8) expect(text).not.toContain(part);
}

const TOO_BIG = 'token too large';
const NOT_BEARER = 'authorization header must be "Bearer <JWT>"';
const ALG = 'token algorithm not allowed';
const SIGNATURE = 'token signature invalid';
const NO_TENANT = 'token has no tenant_id claim';
const BAD_TENANT = 'token tenant_id claim must be one district UUID';

/** Flips one character in the middle of the signature (the last one may only carry padding bits). */
function tamper(token: string): string {
  const [h, p, s] = token.split('.') as [string, string, string];
  const i = Math.floor(s.length / 2);
  return `${h}.${p}.${s.slice(0, i)}${s[i] === 'A' ? 'B' : 'A'}${s.slice(i + 1)}`;
}

const refusals: [string, () => Promise<string | undefined>, string][] = [
  ['no Authorization header', async () => undefined, 'missing bearer token'],
  ['an empty Authorization header', async () => '', 'missing bearer token'],
  ['a Basic scheme', async () => 'Basic xyz', NOT_BEARER],
  ['a malformed JWT', async () => 'Bearer abc.def', NOT_BEARER],
  ['a bare token without scheme', async () => craft(), NOT_BEARER],
  [
    'an unsigned alg:none token',
    () =>
      bearer(
        new UnsecuredJWT({
          iss: platform.auth.issuer,
          aud: platform.auth.audience,
          exp: now() + 3600,
          [platform.auth.tenantClaim]: NORTH,
        }).encode(),
      ),
    ALG,
  ],
  [
    'an HS256 token keyed with the public JWK',
    () => bearer(craft({ header: { alg: 'HS256' }, key: new TextEncoder().encode(JSON.stringify(platform.keys.devIssuer.jwks.keys[0])) })),
    ALG,
  ],
  ['an HS256 token keyed with a random secret', () => bearer(craft({ header: { alg: 'HS256' }, key: randomBytes(32) })), ALG],
  ['a tampered signature', async () => bearer(tamper(await craft())), SIGNATURE],
  ['another ES256 key under the same kid', async () => bearer(craft({ key: (await generateKeyPair('ES256')).privateKey })), SIGNATURE],
  ['an unknown kid', () => bearer(craft({ header: { kid: 'not-a-known-key' } })), 'token signed by an unknown key'],
  ['no exp claim', () => bearer(craft({ claims: { exp: undefined } })), 'token claim exp invalid'],
  ['exp well past the clock tolerance', () => bearer(craft({ claims: { iat: now() - 7200, exp: now() - 300 } })), 'token expired'],
  ['nbf beyond the clock tolerance', () => bearer(craft({ claims: { nbf: now() + 300 } })), 'token not yet valid'],
  ['iat beyond the clock tolerance', () => bearer(craft({ claims: { iat: now() + 300 } })), 'token issued in the future'],
  ['a non-numeric iat', () => bearer(craft({ claims: { iat: 'yesterday' } })), 'token claim iat invalid'],
  ['a wrong issuer', () => bearer(craft({ claims: { iss: 'https://evil.example/' } })), 'token issuer not accepted'],
  ['a wrong audience', () => bearer(craft({ claims: { aud: 'another-api' } })), 'token audience not accepted'],
  ['no tenant claim', () => bearer(craft(tenant(undefined))), NO_TENANT],
  ['an empty tenant claim', () => bearer(craft(tenant(''))), NO_TENANT],
  ['a null tenant claim', () => bearer(craft(tenant(null))), NO_TENANT],
  ['a non-UUID tenant claim', () => bearer(craft(tenant('north-valley'))), BAD_TENANT],
  ['an array of UUID tenant claims', () => bearer(craft(tenant([NORTH, SOUTH]))), BAD_TENANT],
  ['an array of one UUID', () => bearer(craft(tenant([NORTH]))), BAD_TENANT],
  ['a number tenant claim', () => bearer(craft(tenant(42))), BAD_TENANT],
  ['an object tenant claim', () => bearer(craft(tenant({ id: NORTH }))), BAD_TENANT],
  ['SQL in the tenant claim', () => bearer(craft(tenant("' or 1=1 --"))), BAD_TENANT],
  ['a UUID with SQL appended', () => bearer(craft(tenant(`${NORTH}' or 1=1 --`))), BAD_TENANT],
  // Validly signed, but over 8 KiB (and under Node's 16 KiB header limit): refused before parsing.
  ['an oversized Authorization header', () => bearer(craft({ claims: { padding: 'x'.repeat(7000) } })), TOO_BIG],
];

describe('the gateway refuses a bad caller', () => {
  it.each(refusals)('%s → 401', async (_name, header, reason) => {
    const authorization = await header();
    if (reason === TOO_BIG) expect(authorization!.length).toSatisfy((n: number) => n > 8 * 1024 && n < 15 * 1024);
    const { status, headers, body, text } = await send(authorization);
    expect(status).toBe(401);
    expect(headers.get('www-authenticate')).toMatch(/^Bearer /);
    expect(body.data).toBeUndefined();
    expect(body.errors).toHaveLength(1);
    expect(body.errors[0]).toEqual({ message: reason, extensions: { code: 'UNAUTHENTICATED' } });
    expectNoLeak(text, authorization?.replace(/^\S+ /, ''));
  });
});

describe('the gateway accepts a good caller', () => {
  it.each([
    ['a correctly signed token', () => ({})],
    ['a token expired 10 s ago (inside the clock tolerance)', () => ({ claims: { iat: now() - 3600, exp: now() - 10 } })],
    ['a token with nbf 10 s ahead (inside the clock tolerance)', () => ({ claims: { nbf: now() + 10 } })],
    ['a token with iat 10 s ahead (inside the clock tolerance)', () => ({ claims: { iat: now() + 10 } })],
    ['a token without iat', () => ({ claims: { iat: undefined } })],
    ['an upper-case tenant UUID', () => tenant(NORTH.toUpperCase())],
  ] as [string, () => Craft][])('%s → 200', async (_name, options) => {
    const { status, body } = await send(await bearer(craft(options())));
    expect(status).toBe(200);
    expect(body).toEqual({ data: { district: { id: NORTH } } });
  });

  it.each([
    ['x-tenant-id', () => SOUTH],
    ['x-tenant-context', () => craft(tenant(SOUTH))],
  ])('ignores a client-sent %s header naming another district', async (name, value) => {
    const { status, body } = await send(await bearer(craft()), undefined, { [name]: await value() });
    expect(status).toBe(200);
    expect(body).toEqual({ data: { district: { id: NORTH } } });
  });
});

const MALFORMED_GRAPHQL = JSON.stringify({ query: '{ district { id ' });

describe('bad requests with a valid token', () => {
  it.each([
    ['malformed GraphQL', MALFORMED_GRAPHQL],
    ['an invalid JSON body', '{"query": "{ district { id } }"'],
  ])('%s → 400 without a stack', async (_name, payload) => {
    const token = await craft();
    const { status, body, text } = await send(await bearer(token), payload);
    expect(status).toBe(400);
    expect(body.errors).toHaveLength(1);
    expect(body.errors[0].extensions.stacktrace).toBeUndefined();
    expectNoLeak(text, token);
  });

  it('an invalid JSON body is a BAD_REQUEST', async () => {
    const { body } = await send(await bearer(craft()), '{"query": ');
    expect(body.errors[0]).toEqual({ message: 'Request body is not valid JSON', extensions: { code: 'BAD_REQUEST' } });
  });

  it('malformed GraphQL keeps its GRAPHQL_PARSE_FAILED code', async () => {
    const { body } = await send(await bearer(craft()), MALFORMED_GRAPHQL);
    expect(body.errors[0].extensions.code).toBe('GRAPHQL_PARSE_FAILED');
  });
});

/**
 * One raw HTTP exchange, so a test controls Content-Length and chunking. Resolves with the answer even when the
 * server answers before reading the whole body (a write error after that is expected and ignored).
 */
function exchange(
  method: string,
  headers: Record<string, string | number>,
  chunks: Buffer[] = [],
): Promise<{ status: number; headers: IncomingHttpHeaders; body: any }> {
  return new Promise((resolve, reject) => {
    let answered = false;
    // A connection of its own: a refused body must not leave bytes on a connection the next exchange reuses.
    const req = request(platform.gateway.url, { method, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => {
        answered = true;
        resolve({ status: res.statusCode!, headers: res.headers, body: JSON.parse(text) });
        req.destroy();
      });
    });
    req.on('error', (error) => {
      if (!answered) reject(error);
    });
    for (const chunk of chunks) req.write(chunk);
    req.end();
  });
}

describe('the HTTP edge refuses before any GraphQL work', () => {
  const TOO_LARGE = { errors: [{ message: 'Request body too large', extensions: { code: 'PAYLOAD_TOO_LARGE' } }] };
  /** A JSON body of exactly `bytes` bytes. */
  const bodyOf = (bytes: number) => {
    const skeleton = JSON.stringify({ query: DISTRICT, extensions: { padding: '' } });
    return Buffer.from(skeleton.replace('"padding":""', `"padding":"${'x'.repeat(bytes - skeleton.length)}"`));
  };

  it.each(['PUT', 'DELETE', 'PATCH'])('%s /graphql → 405 with Allow, before the token is looked at', async (method) => {
    const { status, headers, body } = await exchange(method, { 'content-type': 'application/json' });
    expect(status).toBe(405);
    expect(headers.allow).toBe('GET, POST');
    expect(body).toEqual({ errors: [{ message: 'Use GET or POST', extensions: { code: 'METHOD_NOT_ALLOWED' } }] });
  });

  it('a declared Content-Length over the limit → 413 before the body is read, even with a valid token', async () => {
    const authorization = await bearer(craft());
    const { status, headers, body } = await exchange('POST', {
      'content-type': 'application/json',
      'content-length': MAX_BODY_BYTES + 1,
      authorization,
    });
    expect(status).toBe(413);
    expect(body).toEqual(TOO_LARGE);
    // The server does not drain the rest: it closes the connection after answering.
    expect(headers.connection).toBe('close');
  });

  it('a chunked body that grows past the limit → 413, and no token check happened first (no 401)', async () => {
    const body = bodyOf(MAX_BODY_BYTES + 1);
    const half = Math.floor(body.length / 2);
    const answer = await exchange('POST', { 'content-type': 'application/json', 'transfer-encoding': 'chunked' }, [
      body.subarray(0, half),
      body.subarray(half),
    ]);
    expect(answer.status).toBe(413);
    expect(answer.body).toEqual(TOO_LARGE);
  });

  it('a body of exactly the limit is read (and then needs a token like any other)', async () => {
    const body = bodyOf(MAX_BODY_BYTES);
    expect(body.length).toBe(MAX_BODY_BYTES);
    const refused = await exchange('POST', { 'content-type': 'application/json', 'content-length': body.length }, [body]);
    expect(refused.status).toBe(401);
    const served = await exchange(
      'POST',
      { 'content-type': 'application/json', 'content-length': body.length, authorization: await bearer(craft()) },
      [body],
    );
    expect(served.status).toBe(200);
    expect(served.body).toEqual({ data: { district: { id: NORTH } } });
  });
});
