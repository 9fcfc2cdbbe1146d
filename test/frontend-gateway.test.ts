/**
 * What the gateway offers browser frontends, over real HTTP: CORS for the allow-list only, the explorer page without a
 * token, the standard introspection query (with a token) within the operation limits, and trusted documents in both
 * modes (`allow` on the platform, `enforce` on a second gateway over the same subgraphs).
 */
import { getIntrospectionQuery } from 'graphql';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEVELOPMENT_CORS_ORIGINS, readConfig } from '../config/config.ts';
import { startGateway } from '../gateway/gateway.ts';
import { CORS_ALLOWED_HEADERS, CORS_MAX_AGE_SECONDS, type RunningServer } from '../http/server.ts';
import { buildManifest, readOperationFiles, sha256Hex } from '../schema/operations-manifest.ts';
import { projectPath } from '../config/registry.ts';
import { demo, startTestPlatform, type TestPlatform } from './support/platform.ts';

const ALLOWED = 'http://app.example.test:5173';
const OTHER = 'http://evil.example.test';

let platform: TestPlatform;
let enforcing: RunningServer;
beforeAll(async () => {
  const base = readConfig({});
  platform = await startTestPlatform({ frontend: { ...base.frontend, corsOrigins: [ALLOWED] } });
  enforcing = await startGateway({
    port: 0,
    auth: platform.auth,
    subgraphUrls: Object.fromEntries(Object.entries(platform.subgraphs).map(([name, s]) => [name, s.url])),
    contextPrivateKey: platform.keys.context.privateJwk,
    districtStatusTtlMs: 5000,
    supergraph: platform.config.supergraph,
    operationLimits: platform.config.operationLimits,
    districtConcurrency: platform.config.districtConcurrency,
    frontend: {
      ...base.frontend,
      explorer: false,
      trustedDocuments: { ...base.frontend.trustedDocuments, mode: 'enforce' },
    },
    logger: pino({ level: 'silent' }),
  });
});
afterAll(async () => {
  await enforcing?.close();
  await platform?.stop();
});

const accessControl = (response: Response) =>
  Object.fromEntries([...response.headers].filter(([name]) => name.startsWith('access-control-')).sort());

describe('configuration', () => {
  it('development allows Vite on :5173, production no origin, an empty list none; `*` and paths are refused', () => {
    expect(readConfig({}).frontend).toMatchObject({ corsOrigins: DEVELOPMENT_CORS_ORIGINS, explorer: true });
    expect(readConfig({}).frontend.trustedDocuments.mode).toBe('allow');
    expect(readConfig({ NODE_ENV: 'production' }).frontend).toMatchObject({ corsOrigins: [], explorer: false });
    expect(readConfig({ NODE_ENV: 'production' }).frontend.trustedDocuments.mode).toBe('enforce');
    expect(readConfig({ NODE_ENV: 'production', EXPLORER: 'on' }).frontend.explorer).toBe(true);
    expect(readConfig({ CORS_ORIGINS: '' }).frontend.corsOrigins).toEqual([]);
    expect(readConfig({ CORS_ORIGINS: 'https://a.example, http://b.example:8080' }).frontend.corsOrigins).toEqual([
      'https://a.example',
      'http://b.example:8080',
    ]);
    expect(() => readConfig({ CORS_ORIGINS: '*' })).toThrow(/CORS_ORIGINS \* is not an origin/);
    expect(() => readConfig({ CORS_ORIGINS: 'https://a.example/app' })).toThrow(/CORS_ORIGINS/);
    expect(() => readConfig({ TRUSTED_DOCUMENTS: 'off' })).toThrow(/TRUSTED_DOCUMENTS allow or enforce/);
  });
});

describe('CORS', () => {
  const preflight = (origin: string) =>
    fetch(platform.gateway.url, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
    });

  it('answers an allowed origin’s preflight 204, before any token, with the methods, headers and a max-age', async () => {
    const response = await preflight(ALLOWED);
    expect(response.status).toBe(204);
    expect(accessControl(response)).toEqual({
      'access-control-allow-headers': CORS_ALLOWED_HEADERS.join(','),
      'access-control-allow-methods': 'GET,POST',
      'access-control-allow-origin': ALLOWED,
      'access-control-expose-headers': 'retry-after',
      'access-control-max-age': String(CORS_MAX_AGE_SECONDS),
    });
    expect(response.headers.get('vary')).toBe('Origin');
  });

  it('gives another origin no CORS header at all, preflight or request', async () => {
    const response = await preflight(OTHER);
    expect(accessControl(response)).toEqual({});
    expect(response.status).toBe(405);
    const post = await platform.graphql(
      { query: '{ district { name } }' },
      { token: await platform.token('north-valley'), headers: { origin: OTHER } },
    );
    expect(post.status).toBe(200);
    expect(accessControl(await fetch(platform.gateway.url, { method: 'POST', headers: { origin: OTHER } }))).toEqual({});
  });

  it('marks an allowed origin’s answers (even a 401) with its origin and Vary: Origin; a request without Origin gets none', async () => {
    const unauthenticated = await fetch(platform.gateway.url, {
      method: 'POST',
      headers: { origin: ALLOWED, 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ district { name } }' }),
    });
    expect(unauthenticated.status).toBe(401);
    expect(unauthenticated.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    expect(unauthenticated.headers.get('vary')).toBe('Origin');
    const plain = await fetch(platform.gateway.url, { method: 'POST' });
    expect(accessControl(plain)).toEqual({});
  });
});

describe('the explorer', () => {
  it('is served to a browser on GET /graphql without a token: GraphiQL inlined, a header template, connections to itself only', async () => {
    const response = await fetch(platform.gateway.url, { headers: { accept: 'text/html,application/xhtml+xml' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(response.headers.get('content-security-policy')).toContain("connect-src 'self'");
    // fetch asks for gzip (and unpacks it): the 9 MB page travels gzipped.
    expect(response.headers.get('content-encoding')).toBe('gzip');
    const html = await response.text();
    expect(html).toContain('<title>K-12 graph explorer</title>');
    expect(html).toContain('Bearer <paste a token>');
    // No script or stylesheet is fetched from anywhere: every asset is in the page.
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+rel="stylesheet"/);
  });

  it('is served on the GraphQL path only: a browser GET elsewhere is not the explorer', async () => {
    const response = await fetch(new URL('/health/live', platform.gateway.url), { headers: { accept: 'text/html' } });
    expect(response.headers.get('content-type')).not.toContain('text/html');
    expect(await response.json()).toMatchObject({ status: 'ok' });
  });

  it('is not a way around the token: GET for JSON still answers 401', async () => {
    const response = await fetch(`${platform.gateway.url}?query=${encodeURIComponent('{ district { name } }')}`, {
      headers: { accept: 'application/json' },
    });
    expect(response.status).toBe(401);
  });

  it('is off on a gateway configured without it (a browser GET gets the 401 of any request without a token)', async () => {
    const response = await fetch(enforcing.url, { headers: { accept: 'text/html' } });
    expect(response.status).toBe(401);
  });
});

describe('introspection', () => {
  it('the standard introspection query (GraphiQL’s) runs with a token, past the depth limit it alone is exempt from', async () => {
    const query = getIntrospectionQuery({ descriptions: true, inputValueDeprecation: true, schemaDescription: true });
    const { status, body } = await platform.graphql({ query }, { token: await platform.token('north-valley') });
    expect(status).toBe(200);
    expect(body.data.__schema.queryType).toMatchObject({ name: 'Query' });
    expect(body.data.__schema.types.map((t: { name: string }) => t.name)).toContain('Student');
    expect((await platform.graphql({ query })).status).toBe(401);
  });

  it('any other deep __schema selection is held to the depth limit', async () => {
    const query = '{ __schema { types { fields { type { fields { type { fields { type { name } } } } } } } } }';
    const { status, body } = await platform.graphql({ query }, { token: await platform.token('north-valley') });
    expect(status).toBe(400);
    expect(body.errors?.[0]?.extensions?.code).toBe('OPERATION_LIMIT_EXCEEDED');
  });
});

describe('trusted documents', () => {
  let manifest: ReturnType<typeof buildManifest>;
  beforeAll(async () => {
    manifest = buildManifest(await readOperationFiles(projectPath('operations/**/*.graphql')));
  });
  const operation = (name: string) => manifest.operations.find((o) => o.name === name)!;
  const byHash = (hash: string) => ({ extensions: { persistedQuery: { version: 1, sha256Hash: hash } } });
  const north = demo('north-valley');

  it('allow (the platform): a manifest hash runs its operation, any text runs, another hash is an APQ miss', async () => {
    const token = await platform.token('north-valley');
    const sections = await platform.graphql(byHash(operation('DistrictSections').id) as never, { token });
    expect(sections.body.data.district).toEqual({ name: north.name });
    expect((await platform.graphql({ query: '{ district { slug } }' }, { token })).body.data).toEqual({ district: { slug: north.slug } });
    const unknown = await platform.graphql(byHash(sha256Hex('{ district { id } }')) as never, { token });
    expect(unknown.body.errors?.[0]?.extensions?.code).toBe('PERSISTED_QUERY_NOT_FOUND');
  });

  it('a text sent with a hash that is not its own is the caller’s mistake: 400 BAD_REQUEST, not an internal error', async () => {
    const token = await platform.token('north-valley');
    const mismatch = await platform.graphql({ query: '{ district { name } }', ...byHash(sha256Hex('{ district { slug } }')) }, { token });
    expect(mismatch.status).toBe(400);
    expect(mismatch.body.errors).toEqual([{ message: 'provided sha does not match query', extensions: { code: 'BAD_REQUEST' } }]);
  });

  it('enforce: a manifest hash runs (POST and GET), and so does a manifest text in another layout', async () => {
    const token = await platform.token('north-valley');
    const sections = await platform.graphql(byHash(operation('DistrictSections').id) as never, { token, url: enforcing.url });
    expect(sections.status).toBe(200);
    expect(sections.body.data.district).toEqual({ name: north.name });
    const compact = operation('DistrictSections').body.replace(/\s+/g, ' ');
    expect((await platform.graphql({ query: compact }, { token, url: enforcing.url })).body.data.district).toEqual({ name: north.name });
    const search = new URLSearchParams({ extensions: JSON.stringify(byHash(operation('DistrictSections').id).extensions) });
    const get = await fetch(`${enforcing.url}?${search}`, {
      headers: { authorization: `Bearer ${token}`, 'apollo-require-preflight': '1' },
    });
    expect(get.status).toBe(200);
    expect(((await get.json()) as { data: { district: unknown } }).data.district).toEqual({ name: north.name });
  });

  it('enforce: any other text is refused with 400 OPERATION_NOT_TRUSTED, an unknown hash with 400 PERSISTED_QUERY_NOT_IN_LIST', async () => {
    const token = await platform.token('north-valley');
    const text = await platform.graphql({ query: '{ district { name } }' }, { token, url: enforcing.url });
    expect(text.status).toBe(400);
    expect(text.body.errors?.[0]?.extensions?.code).toBe('OPERATION_NOT_TRUSTED');
    const hash = await platform.graphql(byHash(sha256Hex('{ district { name } }')) as never, { token, url: enforcing.url });
    expect(hash.status).toBe(400);
    expect(hash.body.errors?.[0]?.extensions?.code).toBe('PERSISTED_QUERY_NOT_IN_LIST');
    // An APQ registration of a text outside the manifest is the same untrusted text.
    const register = await platform.graphql(
      { query: '{ district { id } }', ...byHash(sha256Hex('{ district { id } }')) },
      { token, url: enforcing.url },
    );
    expect(register.body.errors?.[0]?.extensions?.code).toBe('OPERATION_NOT_TRUSTED');
  });
});
