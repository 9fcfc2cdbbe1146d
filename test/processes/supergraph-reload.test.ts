/**
 * Supergraph reload without a restart, under load. The students subgraph is deployed first with a field the
 * graph does not have yet (`Student.legacyId`, an entity column the shipped SDL leaves out); the supergraph
 * file of a gateway process (gateway/main.ts, SUPERGRAPH_PATH) then gains it. Requests at 50/s throughout:
 * none may fail, the field must answer within 2 s of the file changing, and invalid versions written mid-run
 * must change nothing.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { composeServices } from '@apollo/composition';
import { parse } from 'graphql';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectPath, readRegistry } from '../../config/registry.ts';
import { SUPERGRAPH_PATH } from '../../config/registry.ts';
import { startGateway } from '../../gateway/gateway.ts';
import type { RunningServer } from '../../http/server.ts';
import { loadSubgraphByName } from '../../subgraph-server/registry.ts';
import { startSubgraph, type RunningSubgraph } from '../../subgraph-server/subgraph.ts';
import { startTestPlatform, demo, type TestPlatform } from '../support/platform.ts';
import { DEV_AUDIENCE, DEV_ISSUER } from '../../dev/keys.ts';
import { freePort, killSpawned, postGraphQL, projectFile, spawnNode, steadyLoad, waitFor } from './support.ts';

const RATE = 50;
const LEGACY_ID = 4242;
const OLD_QUERY = 'query($id: ID!) { student(id: $id) { firstName school { name } } }';
const NEW_QUERY = 'query($id: ID!) { student(id: $id) { legacyId } }';
const STUDENT_WITH_NEW_FIELD = /type Student @key\(fields: "id"\) \{\n/;

let platform: TestPlatform;
let studentsWithNewField: RunningSubgraph;
let folder: string;
let studentId: string;
let token: string;
const currentSupergraph = readFileSync(SUPERGRAPH_PATH, 'utf8');
let nextSupergraph: string;

/** The registry's subgraphs composed, with the students SDL gaining `legacyId`. */
function composeWithNewField(): string {
  const result = composeServices(
    readRegistry().map((entry) => {
      let sdl = readFileSync(projectPath(entry.schema), 'utf8');
      if (entry.name === 'students') {
        expect(sdl).toMatch(STUDENT_WITH_NEW_FIELD);
        sdl = sdl.replace(STUDENT_WITH_NEW_FIELD, (match) => `${match}  legacyId: Int\n`);
      }
      return { name: entry.name, typeDefs: parse(sdl), url: entry.routingUrl };
    }),
  );
  if (result.errors) throw new Error(result.errors.map((e) => e.message).join('\n'));
  return result.supergraphSdl;
}

/** Replaces the file at once (write beside it, then rename), as a deploy step should. */
async function replaceFile(path: string, text: string): Promise<void> {
  await writeFile(`${path}.next`, text);
  await rename(`${path}.next`, path);
}

function capturedLogger() {
  const lines: { msg: string; reason?: string }[] = [];
  return { lines, logger: pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) }) };
}

async function startReloadingGateway(
  supergraph: { path: string; url?: string; pollMs: number },
  logger: pino.Logger,
): Promise<RunningServer> {
  return startGateway({
    port: 0,
    auth: platform.auth,
    subgraphUrls: {
      districts: platform.subgraphs.districts!.url,
      staff: platform.subgraphs.staff!.url,
      students: studentsWithNewField.url,
    },
    contextPrivateKey: platform.keys.context.privateJwk,
    districtStatusTtlMs: 5000,
    operationLimits: platform.config.operationLimits,
    frontend: platform.config.frontend,
    // One district drives the whole load here: the per-district cap (tuned for many districts) must not shape it.
    districtConcurrency: { maxInFlight: 64, maxQueued: 1024 },
    supergraph,
    logger,
  });
}

beforeAll(async () => {
  platform = await startTestPlatform();
  folder = await mkdtemp(join(tmpdir(), 'k12-supergraph-'));
  nextSupergraph = composeWithNewField();
  // The new students version is deployed first: it serves the field before the graph has it.
  const definition = await loadSubgraphByName('students');
  const sdl = readFileSync(projectPath(readRegistry().find((e) => e.name === 'students')!.schema), 'utf8').replace(
    STUDENT_WITH_NEW_FIELD,
    (m) => `${m}  legacyId: Int\n`,
  );
  studentsWithNewField = await startSubgraph(
    { ...definition, typeDefs: parse(sdl) },
    {
      port: 0,
      databaseUrl: platform.databases.students!.appUrl,
      contextPublicKey: platform.keys.context.publicJwk,
      logger: pino({ level: 'silent' }),
    },
  );
  const owner = await platform.connect(platform.databases.students!.ownerUrl);
  const { rows } = await owner.query<{ id: string }>(
    'update student set legacy_id = $2 where id = (select id from student where tenant_id = $1 order by id limit 1) returning id',
    [demo('north-valley').tenantId, LEGACY_ID],
  );
  expect(rows).toHaveLength(1);
  studentId = rows[0]!.id;
  token = await platform.token('north-valley');
});
afterAll(async () => {
  killSpawned();
  await studentsWithNewField?.close();
  await platform?.stop();
  await rm(folder, { recursive: true, force: true });
});

/**
 * Probes every 50 ms without waiting for earlier probes (on a busy machine one answer can take longer than the
 * swap), until one succeeds; returns the earliest-sent probe that succeeded, in ms after `since`.
 */
async function firstAnswer(probe: () => Promise<unknown>, since: number): Promise<{ sentMs: number; answeredMs: number }> {
  let first: { sentMs: number; answeredMs: number } | undefined;
  const probes: Promise<void>[] = [];
  const deadline = since + 15_000;
  while (!first) {
    if (performance.now() > deadline) throw new Error('the new field did not answer within 15 s of the file changing');
    const sentMs = performance.now() - since;
    probes.push(
      probe().then((answer) => {
        if (answer && (!first || sentMs < first.sentMs)) first = { sentMs, answeredMs: performance.now() - since };
      }),
    );
    await new Promise((r) => setTimeout(r, 50));
  }
  await Promise.all(probes);
  return first;
}

const newFieldAnswer = async (url: string) => {
  const { status, body } = await postGraphQL(url, token, NEW_QUERY, { id: studentId });
  return status === 200 && body.data?.student?.legacyId === LEGACY_ID ? body : undefined;
};

describe('supergraph reload', () => {
  it(
    'swaps in a supergraph file that gains a field under 50 req/s with 0 failed requests, and ignores invalid versions',
    { timeout: 120_000 },
    async () => {
      const path = join(folder, 'supergraph.graphql');
      await writeFile(path, currentSupergraph);
      const jwksFile = join(folder, 'jwks.json');
      await writeFile(jwksFile, JSON.stringify(platform.keys.devIssuer.jwks));
      const port = await freePort();
      const gatewayProcess = spawnNode([projectFile('gateway/main.ts')], {
        GATEWAY_PORT: String(port),
        SUPERGRAPH_PATH: path,
        TENANT_CONTEXT_PRIVATE_KEY: JSON.stringify(platform.keys.context.privateJwk),
        JWKS_FILE: jwksFile,
        JWT_ISSUER: DEV_ISSUER,
        JWT_AUDIENCE: DEV_AUDIENCE,
        DISTRICTS_ROUTING_URL: platform.subgraphs.districts!.url,
        STAFF_ROUTING_URL: platform.subgraphs.staff!.url,
        STUDENTS_ROUTING_URL: studentsWithNewField.url,
        // One district drives the whole load here: the per-district cap (tuned for many districts) must not shape it.
        DISTRICT_MAX_IN_FLIGHT: '64',
        DISTRICT_MAX_QUEUED: '1024',
        LOG_LEVEL: 'info',
      });
      await gatewayProcess.line(/gateway ready/, 60_000);
      const gateway = { url: `http://127.0.0.1:${port}/graphql` };
      const lines = {
        filter: (match: (line: { msg: string; reason?: string; time: number }) => boolean) =>
          gatewayProcess.lines
            .filter((l) => l.startsWith('{'))
            .map((l) => JSON.parse(l) as { msg: string; reason?: string; time: number })
            .filter(match),
      };
      try {
        // The field is new: the gateway refuses it until its supergraph has it.
        const before = await postGraphQL(gateway.url, token, NEW_QUERY, { id: studentId });
        expect(before.status).toBe(400);
        expect(before.body.errors[0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');

        let newFieldLive = false;
        let done = false;
        let sent = 0;
        const load = steadyLoad({
          url: gateway.url,
          token,
          rate: RATE,
          // Once the field answers, every other request asks for it.
          next: () =>
            newFieldLive && sent++ % 2
              ? { operation: 'new', query: NEW_QUERY, variables: { id: studentId } }
              : { operation: 'old', query: OLD_QUERY, variables: { id: studentId } },
          until: () => done,
        });
        await new Promise((r) => setTimeout(r, 2000));

        // Invalid versions mid-run: a truncated file (not GraphQL), then GraphQL that is no valid supergraph.
        await replaceFile(path, currentSupergraph.slice(0, Math.floor(currentSupergraph.length / 2)));
        await waitFor(
          'the truncated supergraph to be refused',
          () => lines.filter((l) => l.msg.startsWith('supergraph refused')).length === 1,
          { timeoutMs: 10_000 },
        );
        await replaceFile(path, nextSupergraph.replace('legacyId: Int', 'legacyId: NoSuchType'));
        await waitFor(
          'the second invalid supergraph to be refused',
          () => lines.filter((l) => l.msg.startsWith('supergraph refused')).length === 2,
          { timeoutMs: 10_000 },
        );
        const refusals = lines.filter((l) => l.msg.startsWith('supergraph refused'));
        expect(refusals[1]!.reason).toMatch(/NoSuchType/);
        expect((await postGraphQL(gateway.url, token, NEW_QUERY, { id: studentId })).status).toBe(400);
        expect((await postGraphQL(gateway.url, token, OLD_QUERY, { id: studentId })).body.data.student.firstName).toEqual(
          expect.any(String),
        );
        await new Promise((r) => setTimeout(r, 1000));

        // The valid version: the field answers within 2 s of the file changing.
        await replaceFile(path, nextSupergraph);
        const changedAt = performance.now();
        const changedAtEpoch = Date.now();
        const live = await firstAnswer(() => newFieldAnswer(gateway.url), changedAt);
        const answeredAfterMs = Math.round(live.sentMs);
        newFieldLive = true;
        await new Promise((r) => setTimeout(r, 3000));
        done = true;
        const outcomes = await load;

        const updates = lines.filter((l) => l.msg === 'supergraph updated');
        expect(updates).toHaveLength(1);
        const withNewField = outcomes.filter((o) => o.operation === 'new');
        expect(withNewField.length).toBeGreaterThan(0);
        const failed = outcomes.filter((o) => o.error !== null);
        console.log(
          `supergraph reload: ${outcomes.length} requests at ${RATE}/s (${withNewField.length} asking for the new field), ${failed.length} failed; ` +
            `after the file changed the gateway logged the swap at ${updates[0]!.time - changedAtEpoch} ms, a request sent at ${answeredAfterMs} ms got the new field ` +
            `(its answer back at ${Math.round(live.answeredMs)} ms); 2 invalid versions refused, old supergraph kept`,
        );
        expect(failed).toEqual([]);
        expect(answeredAfterMs).toBeLessThan(2000);
      } finally {
        expect(await gatewayProcess.stop('SIGTERM')).toEqual({ code: 0, signal: null });
      }
    },
  );

  it('follows a supergraph URL by polling, and keeps serving when the URL fails', { timeout: 60_000 }, async () => {
    let served: { status: number; body: string } = { status: 200, body: currentSupergraph };
    const server: Server = createServer((_req, res) => {
      res.statusCode = served.status;
      res.end(served.body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/supergraph.graphql`;
    const { lines, logger } = capturedLogger();
    const gateway = await startReloadingGateway({ path: SUPERGRAPH_PATH, url, pollMs: 200 }, logger);
    try {
      expect((await postGraphQL(gateway.url, token, NEW_QUERY, { id: studentId })).status).toBe(400);
      served = { status: 200, body: nextSupergraph };
      await waitFor('the new field to answer through the URL source', () => newFieldAnswer(gateway.url), {
        timeoutMs: 5000,
        intervalMs: 50,
      });

      served = { status: 503, body: 'unavailable' };
      await waitFor('the failing URL to be logged', () => lines.find((l) => l.msg.startsWith('supergraph unreadable')), {
        timeoutMs: 5000,
      });
      expect(await newFieldAnswer(gateway.url)).toBeDefined();
    } finally {
      await gateway.close();
      await new Promise((r) => server.close(r));
    }
  });
});
