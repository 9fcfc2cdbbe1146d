/**
 * Transient database faults inside one tenant transaction, injected by triggers on the students database of a
 * test platform (its own databases), through the gateway: a serialization failure and a deadlock re-run the whole
 * transaction and the write lands once; a connection lost while `commit` is in flight is never retried and answers
 * COMMIT_OUTCOME_UNKNOWN; a statement timeout answers 503 DATABASE_BUSY; a database nothing listens for answers 503
 * DATABASE_UNAVAILABLE. Each answer is its docs/errors.md example.
 */
import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_DATABASE_FAULTS } from '../../config/config.ts';
import { startGateway } from '../../gateway/gateway.ts';
import type { RunningServer } from '../../http/server.ts';
import { loadSubgraphByName } from '../../subgraph-server/registry.ts';
import { startSubgraph, type RunningSubgraph } from '../../subgraph-server/subgraph.ts';
import { freePort } from '../processes/support.ts';
import { FAULT_CODES, documentedExamples } from '../support/errors-doc.ts';
import { demo, startTestPlatform, type TestPlatform } from '../support/platform.ts';

const STATEMENT_TIMEOUT_MS = 1000;
let platform: TestPlatform;
let owner: import('pg').Client;
let deadDatabaseSubgraph: RunningSubgraph;
let deadDatabaseGateway: RunningServer;
let schoolId: string;
const ENROLL = 'mutation Enroll($input: EnrollStudentInput!) { enrollStudent(input: $input) { id } }';

/** Triggers that fail an insert of `student` by its last name's prefix; each counts its calls in a sequence (not rolled back). */
const FAULT_TRIGGERS = (appRole: string) => `
  create sequence serialize_calls; create sequence deadlock_calls; create sequence commit_lost_calls;
  grant usage on sequence serialize_calls, deadlock_calls, commit_lost_calls to "${appRole}";
  create function inject_fault() returns trigger language plpgsql as $$
  begin
    if new.last_name like 'serialize-%' and nextval('serialize_calls') <= 2 then
      raise exception 'injected serialization failure' using errcode = '40001';
    elsif new.last_name like 'deadlock-%' and nextval('deadlock_calls') <= 1 then
      raise exception 'injected deadlock' using errcode = '40P01';
    elsif new.last_name like 'slow-%' then
      perform pg_sleep(${(STATEMENT_TIMEOUT_MS * 3) / 1000});
    end if;
    return new;
  end $$;
  create trigger inject_fault before insert on student for each row execute function inject_fault();
  -- Deferred: runs inside COMMIT, and ends the session there, so the commit's outcome is unknown to the client.
  create function lose_connection_at_commit() returns trigger language plpgsql as $$
  begin
    if new.last_name like 'commit-lost-%' then
      perform nextval('commit_lost_calls');
      perform pg_terminate_backend(pg_backend_pid());
      perform pg_sleep(5);
    end if;
    return null;
  end $$;
  create constraint trigger lose_connection_at_commit after insert on student deferrable initially deferred
    for each row execute function lose_connection_at_commit();`;

beforeAll(async () => {
  platform = await startTestPlatform({ databaseFaults: { ...DEFAULT_DATABASE_FAULTS, statementTimeoutMs: STATEMENT_TIMEOUT_MS } });
  owner = await platform.connect(platform.databases.students!.ownerUrl);
  await owner.query(FAULT_TRIGGERS(platform.databases.students!.appRole));
  const schools = await platform.as('north-valley', '{ schools(first: 1) { id } }');
  schoolId = schools.body.data.schools[0].id;

  // A students subgraph whose database URL leads nowhere, behind a gateway of its own.
  const deadUrl = new URL(platform.databases.students!.appUrl);
  deadUrl.port = String(await freePort());
  deadDatabaseSubgraph = await startSubgraph(await loadSubgraphByName('students'), {
    port: 0,
    databaseUrl: deadUrl.toString(),
    contextPublicKey: platform.keys.context.publicJwk,
    databaseFaults: { ...DEFAULT_DATABASE_FAULTS, retry: { retries: 1, initialDelayMs: 10, maxDelayMs: 50 } },
    logger: pino({ level: 'silent' }),
  });
  deadDatabaseGateway = await startGateway({
    port: 0,
    auth: platform.auth,
    subgraphUrls: {
      ...Object.fromEntries(Object.entries(platform.subgraphs).map(([name, s]) => [name, s.url])),
      students: deadDatabaseSubgraph.url,
    },
    contextPrivateKey: platform.keys.context.privateJwk,
    districtStatusTtlMs: 0,
    supergraph: platform.config.supergraph,
    operationLimits: platform.config.operationLimits,
    districtConcurrency: platform.config.districtConcurrency,
    frontend: platform.config.frontend,
    logger: pino({ level: 'silent' }),
  });
});
afterAll(async () => {
  await deadDatabaseGateway?.close();
  await deadDatabaseSubgraph?.close();
  await platform?.stop();
});

const enroll = (lastName: string, url?: string) =>
  fetch(url ?? platform.gateway.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${tokenOf}` },
    body: JSON.stringify({ query: ENROLL, variables: { input: { firstName: 'Fault', lastName, grade: 3, schoolId } } }),
  });
let tokenOf = '';
beforeAll(async () => {
  tokenOf = await platform.token('north-valley');
});

const stored = async (lastName: string) =>
  (await owner.query<{ tenant_id: string }>('select tenant_id from student where last_name = $1', [lastName])).rows;
const calls = async (sequence: string) =>
  Number(
    (await owner.query<{ last_value: string; is_called: boolean }>(`select last_value, is_called from ${sequence}`)).rows[0]!.last_value,
  );

describe('a tenant transaction meeting a transient fault', () => {
  it('is re-run whole after serialization failures, and its write lands once', async () => {
    const lastName = `serialize-${randomUUID()}`;
    const response = await enroll(lastName);
    const body = (await response.json()) as { data?: { enrollStudent?: { id: string } } };
    expect(body.data?.enrollStudent?.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(await calls('serialize_calls')).toBe(3);
    expect(await stored(lastName)).toEqual([{ tenant_id: demo('north-valley').tenantId }]);
  });

  it('is re-run whole after a deadlock, and its write lands once', async () => {
    const lastName = `deadlock-${randomUUID()}`;
    const body = (await (await enroll(lastName)).json()) as { data?: { enrollStudent?: { id: string } } };
    expect(body.data?.enrollStudent?.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(await calls('deadlock_calls')).toBe(2);
    expect((await stored(lastName)).length).toBe(1);
  });
});

describe('answers of database faults, each its docs/errors.md example', () => {
  const answers = new Map<string, { status: number; retryAfter: string | null; body: any }>();
  const record = async (response: Response) => {
    const body = (await response.json()) as { errors?: { extensions?: { code?: string } }[] };
    const answer = { status: response.status, retryAfter: response.headers.get('retry-after'), body };
    answers.set(body.errors?.[0]?.extensions?.code ?? 'none', answer);
    return answer;
  };

  it('a write whose commit lost its connection is not retried and answers COMMIT_OUTCOME_UNKNOWN', async () => {
    const lastName = `commit-lost-${randomUUID()}`;
    const answer = await record(await enroll(lastName));
    expect(answer.body.errors?.[0]?.extensions?.code).toBe('COMMIT_OUTCOME_UNKNOWN');
    // Sent once: the trigger ran in one commit only.
    expect(await calls('commit_lost_calls')).toBe(1);
    expect((await stored(lastName)).length).toBe(0);
  });

  it('a statement over its timeout answers 503 DATABASE_BUSY with Retry-After, and is not retried', async () => {
    const lastName = `slow-${randomUUID()}`;
    const answer = await record(await enroll(lastName));
    expect(answer).toMatchObject({ status: 503, retryAfter: '1' });
    expect(answer.body.errors?.[0]?.extensions?.code).toBe('DATABASE_BUSY');
    expect((await stored(lastName)).length).toBe(0);
  });

  it('a database nothing listens for answers 503 DATABASE_UNAVAILABLE with Retry-After', async () => {
    const answer = await record(
      await fetch(deadDatabaseGateway.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${tokenOf}` },
        body: JSON.stringify({ query: '{ students(first: 1) { edges { node { id } } } }' }),
      }),
    );
    expect(answer).toMatchObject({ status: 503, retryAfter: '2' });
    expect(answer.body.errors?.[0]?.extensions?.code).toBe('DATABASE_UNAVAILABLE');
  });

  it('matches the documented status, code and message of each', () => {
    const documented = documentedExamples();
    expect([...answers.keys()].sort()).toEqual([...FAULT_CODES].sort());
    for (const code of FAULT_CODES) {
      const example = documented.get(code)!;
      const real = answers.get(code)!;
      expect({ code, status: example.status }).toEqual({ code, status: real.status });
      expect(example.body.errors?.[0]?.message, code).toBe(real.body.errors?.[0]?.message);
      expect(example.body.data, code).toEqual(real.body.data);
    }
  });
});
