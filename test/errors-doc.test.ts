/**
 * docs/errors.md says exactly what the platform answers: every documented code is produced here through the running
 * gateway, and its documented example's HTTP status and `extensions.code` are the real ones; every code produced here
 * is documented. The refusals that need another configuration run on a second gateway over the same subgraphs
 * (trusted documents enforced, one request of a district at a time, one a second).
 */
import { readFile } from 'node:fs/promises';
import { createHash, randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readConfig } from '../config/config.ts';
import { projectPath } from '../config/registry.ts';
import { startGateway } from '../gateway/gateway.ts';
import { MAX_BODY_BYTES, type RunningServer } from '../http/server.ts';
import { FAULT_CODES, documentedExamples, type Answer } from './support/errors-doc.ts';
import { demo, startTestPlatform, type TestPlatform } from './support/platform.ts';

let platform: TestPlatform;
/** Trusted documents enforced, one request of a district at a time and none waiting, the staff subgraph unreachable. */
let strict: RunningServer;
/** The district directory (districts subgraph) unreachable; one request of a district a second. */
let directoryless: RunningServer;
let token: string;
const answers = new Map<string, Answer>();
let enrolment: Answer | undefined;
/** A port nothing listens on (the platform's own is closed only at the end). */
/** A well-formed id no district has. */
const UNKNOWN_SCHOOL = '00000000-0000-4000-8000-000000000000';
const NOWHERE = 'http://127.0.0.1:9/graphql';

async function extraGateway(overrides: {
  subgraphUrls: Record<string, string>;
  enforce: boolean;
  districtRate?: { perSecond: number; burst: number; costPerSecond: number };
}): Promise<RunningServer> {
  const base = readConfig({});
  return startGateway({
    port: 0,
    auth: platform.auth,
    subgraphUrls: {
      ...Object.fromEntries(Object.entries(platform.subgraphs).map(([name, s]) => [name, s.url])),
      ...overrides.subgraphUrls,
    },
    contextPrivateKey: platform.keys.context.privateJwk,
    districtStatusTtlMs: 0,
    supergraph: platform.config.supergraph,
    operationLimits: platform.config.operationLimits,
    districtConcurrency: { maxInFlight: 1, maxQueued: 0 },
    districtRate: overrides.districtRate,
    frontend: {
      ...base.frontend,
      explorer: false,
      trustedDocuments: { ...base.frontend.trustedDocuments, mode: overrides.enforce ? 'enforce' : 'allow' },
    },
    logger: pino({ level: 'silent' }),
  });
}

beforeAll(async () => {
  platform = await startTestPlatform({ districtStatusTtlMs: 0 });
  strict = await extraGateway({ subgraphUrls: { staff: NOWHERE }, enforce: true });
  directoryless = await extraGateway({
    subgraphUrls: { districts: NOWHERE },
    enforce: false,
    districtRate: { perSecond: 1, burst: 0, costPerSecond: 0 },
  });
  token = await platform.token('north-valley');
});
afterAll(async () => {
  await strict?.close();
  await directoryless?.close();
  await platform?.stop();
});

/** Sends a raw request to a gateway; records the answer under the code it carries. */
async function send(init: RequestInit & { url?: string; search?: string } = {}): Promise<Answer> {
  const response = await fetch(`${init.url ?? platform.gateway.url}${init.search ?? ''}`, init);
  const answer: Answer = { status: response.status, body: (await response.json()) as Answer['body'] };
  const code = answer.body.errors?.[0]?.extensions?.code;
  if (code && !answers.has(code)) answers.set(code, answer);
  return answer;
}
const post = (body: unknown, options: { token?: string | null; url?: string } = {}) =>
  send({
    method: 'POST',
    url: options.url,
    headers: {
      'content-type': 'application/json',
      ...(options.token === null ? {} : { authorization: `Bearer ${options.token ?? token}` }),
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
const persisted = (hash: string) => ({ persistedQuery: { version: 1, sha256Hash: hash } });
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

async function setStatus(slug: 'east-lake', status: string) {
  const owner = await platform.connect(platform.databases.districts!.ownerUrl);
  await owner.query('update district set status = $1 where tenant_id = $2', [status, demo(slug).tenantId]);
  await owner.end();
}

describe('every error code a client can get', () => {
  it('is produced by the running platform', async () => {
    await post({ query: '{ district { name } }' }, { token: null }); // UNAUTHENTICATED
    await setStatus('east-lake', 'suspended');
    try {
      await post({ query: '{ district { name } }' }, { token: await platform.token('east-lake') }); // FORBIDDEN
    } finally {
      await setStatus('east-lake', 'active');
    }
    await post({ query: '{ students(first: 150) { edges { node { id } } } }' }); // BAD_USER_INPUT (resolver)
    enrolment = await post({
      query: 'mutation Enroll($input: EnrollStudentInput!) { enrollStudent(input: $input) { id } }',
      variables: { input: { firstName: 'Ada', lastName: 'Lovelace', grade: 3, dateOfBirth: '2017-05-01', schoolId: UNKNOWN_SCHOOL } },
    });
    await post({ extensions: persisted(sha256(randomUUID())) }); // PERSISTED_QUERY_NOT_FOUND
    await post({ query: '{ schools { students { school { students { id } } } } }' }); // OPERATION_LIMIT_EXCEEDED
    await post({ query: '{ district { name }' }); // GRAPHQL_PARSE_FAILED
    await post({ query: '{ district { nickname } }' }); // GRAPHQL_VALIDATION_FAILED
    await post({ query: 'query A { district { name } }', operationName: 'B' }); // OPERATION_RESOLUTION_FAILURE
    await post('{"query": '); // BAD_REQUEST
    await post('x'.repeat(MAX_BODY_BYTES + 1)); // PAYLOAD_TOO_LARGE
    await send({ search: '/../../nowhere' }); // NOT_FOUND
    await send({ method: 'DELETE' }); // METHOD_NOT_ALLOWED
    await post({ query: '{ district { name } }' }, { url: strict.url }); // OPERATION_NOT_TRUSTED
    await post({ extensions: persisted(sha256(randomUUID())) }, { url: strict.url }); // PERSISTED_QUERY_NOT_IN_LIST
    // DISTRICT_CONCURRENCY_LIMITED: a dozen of the district's requests at once where one may run and none wait.
    const student = { query: await readFile(projectPath('operations/student.graphql'), 'utf8'), variables: { id: randomUUID() } };
    await Promise.all(Array.from({ length: 12 }, () => post(student, { url: strict.url })));
    // A subgraph that does not answer: the fields it resolves err (INTERNAL_SERVER_ERROR); without the directory nothing runs.
    const roster = { query: await readFile(projectPath('operations/sectionRoster.graphql'), 'utf8'), variables: { id: randomUUID() } };
    await post(roster, { url: strict.url });
    // SERVICE_UNAVAILABLE, and DISTRICT_RATE_LIMITED for the district's second request within the same second.
    const directorylessRequest = () => post({ query: '{ students(first: 1) { edges { node { id } } } }' }, { url: directoryless.url });
    await Promise.all([directorylessRequest(), directorylessRequest()]);
    expect(answers.size).toBe(18);
    console.log(`error codes produced: ${[...answers].map(([code, answer]) => `${code} ${answer.status}`).join(', ')}`);
  });

  it('each documented with its real HTTP status and code, and nothing else documented', () => {
    const documented = documentedExamples();
    for (const code of FAULT_CODES) documented.delete(code);
    // BAD_USER_INPUT's example is the one naming a field of the input.
    answers.set('BAD_USER_INPUT', enrolment!);
    expect([...documented.keys()].sort()).toEqual([...answers.keys()].sort());
    for (const [code, example] of documented) {
      const real = answers.get(code)!;
      expect({ code, status: example.status }).toEqual({ code, status: real.status });
      expect(example.body.errors?.[0]?.extensions?.code, code).toBe(code);
      expect(example.body.errors?.[0]?.message, code).toBe(real.body.errors?.[0]?.message);
    }
  });
});
