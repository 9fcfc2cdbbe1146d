/**
 * Fault injection on real processes: the platform as `npm start` runs it (dev/start.ts: a process per service,
 * supervised) over an embedded PostgreSQL this test process owns (so the test can restart or freeze it without
 * touching any other server), an open-loop load of reads and client-keyed writes from three districts, and the
 * checks every fault test makes (no cross-district answer, every acknowledged write in the database exactly once).
 *
 * Each fault test records its result with recordFault; faultSummaryLine gives the line for every fault recorded by
 * this vitest run so far (`faults: N injected, …`), so whichever fault test ends last prints the whole run's line.
 */
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { appendFile, chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg, { escapeIdentifier } from 'pg';
import { pino } from 'pino';
import { Pool } from 'undici';
import { readRegistry } from '../../config/registry.ts';
import { openDatabaseServer, type DatabaseServer } from '../../database/database.ts';
import { issueDevToken, loadOrCreateKeys } from '../../dev/keys.ts';
import { DEMO_DISTRICTS } from '../../dev/seed.ts';
import {
  freePort,
  killSpawned,
  processesWithEnvironment,
  projectFile,
  spawnNode,
  waitFor,
  type NodeProcess,
} from '../processes/support.ts';

export { waitFor };

// ---------------------------------------------------------------------------------------------------------------
// The run's fault line

export interface FaultResult {
  fault: string;
  crossDistrictAnswers: number;
  lostWrites: number;
  duplicatedWrites: number;
  /** Seconds from the end of the fault to the first fully correct answer again. */
  recoverySeconds: number;
}

/** One file per vitest run (the test files run in forks of the one vitest process). */
const resultsFile = () => join(tmpdir(), `k12-faults-${process.ppid}.jsonl`);

export async function recordFault(result: FaultResult): Promise<void> {
  await appendFile(resultsFile(), `${JSON.stringify(result)}\n`);
}

export async function faultSummaryLine(): Promise<string> {
  const lines = (await readFile(resultsFile(), 'utf8').catch(() => '')).split('\n').filter(Boolean);
  const results = lines.map((line) => JSON.parse(line) as FaultResult);
  const sum = (pick: (r: FaultResult) => number) => results.reduce((total, r) => total + pick(r), 0);
  const recovery = Math.max(0, ...results.map((r) => r.recoverySeconds));
  return (
    `faults: ${results.length} injected (${results.map((r) => r.fault).join(', ')}), ${sum((r) => r.crossDistrictAnswers)} cross-district answers, ` +
    `${sum((r) => r.lostWrites)} lost writes, ${sum((r) => r.duplicatedWrites)} duplicated writes, recovery max ${recovery.toFixed(1)} s`
  );
}

// ---------------------------------------------------------------------------------------------------------------
// The platform in processes, over a PostgreSQL of the test's own

export interface FaultPlatform {
  dataDir: string;
  gatewayUrl: string;
  adminUrl: string;
  launcher: NodeProcess;
  /** By service name ('gateway' and each subgraph): the port it listens on. */
  ports: Map<string, number>;
  /** A token per demo district. */
  tokens: Map<string, string>;
  /** The service processes now running (children of the launcher): name → pid. */
  servicePids(): Map<string, number>;
  /** Stops PostgreSQL (fast shutdown) and resolves once it is down; `startPostgres` brings it back on the same port. */
  stopPostgres(): Promise<void>;
  startPostgres(): Promise<void>;
  /** Every process of this PostgreSQL server: the postmaster and its children (backends, background workers). */
  postgresPids(): number[];
  /** An admin connection to a service's database. */
  connect(service: string): Promise<pg.Client>;
  stop(): Promise<void>;
}

const quiet = pino({ level: 'warn' });

export async function startFaultPlatform(env: Record<string, string> = {}): Promise<FaultPlatform> {
  const dataDir = await mkdtemp(join(tmpdir(), 'k12-faults-'));
  // Run as root, PostgreSQL runs as its own user, which must be able to enter the folder.
  await chmod(dataDir, 0o755);
  const pgDir = join(dataDir, 'pg');
  const embeddedPort = await freePort();
  const open = () => openDatabaseServer({ dataDir: pgDir, embeddedPort, logger: quiet });
  let server: DatabaseServer = await open();
  const fullEnv: Record<string, string> = {
    DATA_DIR: dataDir,
    DATABASE_URL: server.adminUrl,
    GATEWAY_PORT: String(await freePort()),
    LOG_LEVEL: 'warn',
    ...env,
  };
  const ports = new Map<string, number>([['gateway', Number(fullEnv.GATEWAY_PORT)]]);
  for (const entry of readRegistry()) {
    fullEnv[entry.port.env] = String(await freePort());
    ports.set(entry.name, Number(fullEnv[entry.port.env]));
  }
  const launcher = spawnNode([projectFile('dev/start.ts')], fullEnv);
  try {
    await launcher.line(/^Ctrl-C stops the platform\./, 120_000);
  } catch (error) {
    launcher.child.kill('SIGKILL');
    await server.stop();
    throw error;
  }
  const keys = await loadOrCreateKeys(dataDir);
  const tokens = new Map<string, string>();
  for (const district of DEMO_DISTRICTS) tokens.set(district.tenantId, await issueDevToken(keys, { tenantId: district.tenantId }));
  const postmasterPid = () => Number(readFileSync(join(pgDir, 'postgres', 'postmaster.pid'), 'utf8').split('\n')[0]);
  const clients: pg.Client[] = [];
  return {
    dataDir,
    gatewayUrl: `http://127.0.0.1:${fullEnv.GATEWAY_PORT}/graphql`,
    adminUrl: server.adminUrl,
    launcher,
    ports,
    tokens,
    servicePids() {
      const pids = new Map<string, number>();
      for (const p of processesWithEnvironment('DATA_DIR', dataDir)) {
        if (p.parentPid !== launcher.pid) continue;
        const name = /gateway\/main\.ts/.test(p.command) ? 'gateway' : /subgraph-server\/main\.ts (\w+)/.exec(p.command)?.[1];
        if (name) pids.set(name, p.pid);
      }
      return pids;
    },
    async stopPostgres() {
      await server.stop();
    },
    async startPostgres() {
      server = await open();
    },
    postgresPids() {
      const postmaster = postmasterPid();
      const children: number[] = [];
      for (const entry of readdirSync('/proc')) {
        if (!/^\d+$/.test(entry)) continue;
        try {
          const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
          if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === postmaster) children.push(Number(entry));
        } catch {
          // gone meanwhile
        }
      }
      return [postmaster, ...children];
    },
    async connect(service) {
      const database = `k12_${readRegistry().find((e) => e.name === service)!.database}`;
      const url = new URL(server.adminUrl);
      url.pathname = `/${database}`;
      const client = new pg.Client({ connectionString: url.toString() });
      await client.connect();
      clients.push(client);
      return client;
    },
    async stop() {
      await Promise.all(clients.map((c) => c.end().catch(() => {})));
      await launcher.stop('SIGTERM');
      killSpawned();
      for (const leftover of processesWithEnvironment('DATA_DIR', dataDir)) process.kill(leftover.pid, 'SIGKILL');
      await server.stop().catch(() => {});
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Load: reads and client-keyed writes, checked

/** Reads the districts and students subgraphs; `section` (staff, nullable) is asked too when `withStaff`. */
export const readQuery = (withStaff: boolean) =>
  `query Read { district { id } students(first: 5) { edges { node { id } } }${withStaff ? ` section(id: "${randomUUID()}") { id }` : ''} }`;

const ENROLL = 'mutation Enroll($input: EnrollStudentInput!) { enrollStudent(input: $input) { id } }';

export interface Answer {
  sentAtMs: number;
  answeredAtMs: number;
  tenantId: string;
  kind: 'read' | 'write';
  /** True for a read that asked the staff subgraph too. */
  asksStaff: boolean;
  /** The write's client-chosen key (its lastName). */
  key?: string;
  status: number | null;
  body: any;
  /** null when the answer is complete and correct; otherwise a short reason (http_503, graphql_CODE, network_…). */
  error: string | null;
  /** Error codes of the answer's errors, by the first element of their path ('' for none). */
  fieldErrors: Map<string, string>;
}

export interface LoadOptions {
  url: string;
  tokens: Map<string, string>;
  schoolOf: Map<string, string>;
  /** Requests per second, all districts together. */
  rate: number;
  /** Of every `writeEvery` requests, one is a write. */
  writeEvery: number;
  withStaff: () => boolean;
  until: () => boolean;
  /** Marks this run's writes. */
  runId: string;
}

/** Open-model load (request i leaves at start + i / rate, answered or not); resolves with every answer once all are in. */
export async function runLoad(options: LoadOptions): Promise<{ answers: Answer[]; startedAt: number }> {
  const target = new URL(options.url);
  const pool = new Pool(target.origin, { connections: 64 });
  const answers: Answer[] = [];
  const inFlight = new Set<Promise<void>>();
  const startedAt = performance.now();
  const districts = [...options.tokens.keys()];
  const send = async (i: number, sentAtMs: number) => {
    const tenantId = districts[i % districts.length]!;
    const kind = i % options.writeEvery === 0 ? 'write' : 'read';
    const key = kind === 'write' ? `${options.runId}-${i}` : undefined;
    const asksStaff = kind === 'read' && options.withStaff();
    const body =
      kind === 'write'
        ? { query: ENROLL, variables: { input: { firstName: 'Fault', lastName: key, grade: 5, schoolId: options.schoolOf.get(tenantId) } } }
        : { query: readQuery(asksStaff) };
    const answer: Answer = {
      sentAtMs,
      answeredAtMs: 0,
      tenantId,
      kind,
      asksStaff,
      key,
      status: null,
      body: undefined,
      error: null,
      fieldErrors: new Map(),
    };
    try {
      const response = await pool.request({
        path: target.pathname,
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${options.tokens.get(tenantId)}` },
        body: JSON.stringify(body),
        headersTimeout: 60_000,
        bodyTimeout: 60_000,
      });
      answer.status = response.statusCode;
      const text = await response.body.text();
      answer.body = JSON.parse(text);
      for (const e of (answer.body?.errors ?? []) as { path?: (string | number)[]; extensions?: { code?: string } }[])
        answer.fieldErrors.set(String(e.path?.[0] ?? ''), e.extensions?.code ?? 'none');
      if (response.statusCode >= 400) answer.error = `http_${response.statusCode}`;
      else if (answer.fieldErrors.size) answer.error = `graphql_${[...answer.fieldErrors.values()][0]}`;
    } catch (caught) {
      answer.error = `network_${(caught as { code?: string }).code ?? 'error'}`;
    }
    answer.answeredAtMs = performance.now() - startedAt;
    answers.push(answer);
  };
  for (let i = 0; !options.until(); i++) {
    const dueAt = startedAt + (i * 1000) / options.rate;
    const wait = dueAt - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const flight = send(i, dueAt - startedAt).finally(() => inFlight.delete(flight));
    inFlight.add(flight);
  }
  await Promise.all(inFlight);
  await pool.close();
  return { answers, startedAt };
}

/** A school of each demo district (enrolments need one), read through the gateway. */
export async function schoolsOf(url: string, tokens: Map<string, string>): Promise<Map<string, string>> {
  const schools = new Map<string, string>();
  for (const [tenantId, token] of tokens) {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: '{ schools(first: 1) { id } }' }),
    });
    const body = (await response.json()) as { data: { schools: { id: string }[] } };
    schools.set(tenantId, body.data.schools[0]!.id);
  }
  return schools;
}

export interface WriteCheck {
  acknowledged: number;
  lost: number;
  duplicated: number;
  /** Acknowledged writes stored under another district or another id than the one answered. */
  misplaced: number;
}

/** Every acknowledged write is in the students database exactly once, in its district, with the id answered. */
export async function checkWrites(students: pg.Client, runId: string, answers: Answer[]): Promise<WriteCheck> {
  const { rows } = await students.query<{ tenant_id: string; id: string; last_name: string }>(
    `select tenant_id, id, last_name from ${escapeIdentifier('student')} where last_name like $1`,
    [`${runId}-%`],
  );
  const byKey = new Map<string, { tenant_id: string; id: string }[]>();
  for (const row of rows) byKey.set(row.last_name, [...(byKey.get(row.last_name) ?? []), row]);
  const acknowledged = answers.filter((a) => a.kind === 'write' && typeof a.body?.data?.enrollStudent?.id === 'string');
  let lost = 0;
  let misplaced = 0;
  for (const answer of acknowledged) {
    const stored = byKey.get(answer.key!) ?? [];
    if (stored.length === 0) lost++;
    else if (stored[0]!.tenant_id !== answer.tenantId || stored[0]!.id !== answer.body.data.enrollStudent.id) misplaced++;
  }
  const duplicated = [...byKey.values()].filter((list) => list.length > 1).length;
  return { acknowledged: acknowledged.length, lost, duplicated, misplaced };
}

/**
 * Answers whose data belongs to another district than the asking one: a `district.id` other than the caller's,
 * or a student id (listed or enrolled) the students database files under another district.
 */
export async function crossDistrictAnswers(students: pg.Client, answers: Answer[]): Promise<number> {
  const studentIds = new Set<string>();
  for (const a of answers) {
    for (const edge of a.body?.data?.students?.edges ?? []) studentIds.add(edge.node.id);
    if (a.body?.data?.enrollStudent?.id) studentIds.add(a.body.data.enrollStudent.id);
  }
  const { rows } = await students.query<{ id: string; tenant_id: string }>('select id, tenant_id from student where id = any($1::uuid[])', [
    [...studentIds],
  ]);
  const tenantOf = new Map(rows.map((r) => [r.id, r.tenant_id]));
  let crossing = 0;
  for (const a of answers) {
    const data = a.body?.data;
    if (!data) continue;
    const ids = [
      ...(data.students?.edges ?? []).map((e: { node: { id: string } }) => e.node.id),
      ...(data.enrollStudent ? [data.enrollStudent.id] : []),
    ];
    const foreign = (data.district && data.district.id !== a.tenantId) || ids.some((id: string) => tenantOf.get(id) !== a.tenantId);
    if (foreign) crossing++;
  }
  return crossing;
}

/** Seconds from `faultEndedAtMs` (load clock) to the first request sent after it from which every answer is complete. */
export function recoverySeconds(answers: Answer[], faultEndedAtMs: number, isComplete: (a: Answer) => boolean): number {
  const after = answers.filter((a) => a.sentAtMs >= faultEndedAtMs).sort((x, y) => x.sentAtMs - y.sentAtMs);
  let lastBad = -1;
  after.forEach((a, i) => {
    if (!isComplete(a)) lastBad = i;
  });
  const firstGood = after[lastBad + 1];
  if (!firstGood) return Infinity;
  return Math.max(0, (firstGood.sentAtMs - faultEndedAtMs) / 1000);
}

/** Connections of each application role (one per service) to its database, now. */
export async function applicationConnections(admin: pg.Client): Promise<Map<string, number>> {
  const { rows } = await admin.query<{ role: string; n: string }>(
    "select usename as role, count(*) as n from pg_stat_activity where usename like 'k12\\_%\\_app' group by usename",
  );
  return new Map(rows.map((r) => [r.role, Number(r.n)]));
}

/** True when every service answers GET /health/live within `timeoutMs`. */
export async function allLive(ports: Map<string, number>, timeoutMs: number): Promise<boolean> {
  const answers = await Promise.all(
    [...ports.values()].map((port) =>
      fetch(`http://127.0.0.1:${port}/health/live`, { signal: AbortSignal.timeout(timeoutMs) }).then(
        (r) => r.ok,
        () => false,
      ),
    ),
  );
  return answers.every(Boolean);
}
