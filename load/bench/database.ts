/**
 * Figures 1 and 2, on the database of the service holding the `student` table (the registry says which),
 * with the same MikroORM queries two ways:
 * - tenant path: the application role, inTenantTransaction (set_config + RLS + the tenant filter), as every request;
 * - explicit path: the owner role (BYPASSRLS, so no policy runs), the same transaction and queries with the
 *   tenant filter's explicit `WHERE tenant_id = …`, and no session context.
 * Both read only, so the owner can run on the live database instead of a copy.
 */
import type { EntityManager, EntitySchema, MikroORM } from '@mikro-orm/postgresql';
import { initOrm } from '../../database/orm.ts';
import { forkForTenant, inTenantTransaction } from '../../tenancy/tenant-transaction.ts';
import { serviceOwning } from '../../config/registry.ts';
import { loadSubgraph } from '../../subgraph-server/registry.ts';
import type { ServiceDatabase } from '../../database/database.ts';
import type { DistrictTarget } from '../scenarios/scenario.ts';
import { summarize, type Summary } from './stats.ts';

type Work = (em: EntityManager, district: DistrictTarget, random: () => number) => Promise<unknown>;

/** The service whose database the figures measure: the one holding the `student` table. */
export const benchService = () => serviceOwning('student');

/** A request's worth of reads: a point lookup and a tenant-filtered page, as the API's resolvers issue them. */
const reads =
  (Student: EntitySchema): Work =>
  async (em, district, random) => {
    const ids = district.samples.studentId!;
    await em.findOne(Student, { id: ids[Math.floor(random() * ids.length)]! });
    await em.find(
      Student,
      { grade: Math.floor(random() * 14) - 1 },
      { orderBy: { lastName: 'asc', firstName: 'asc', id: 'asc' }, limit: 20 },
    );
  };

type Path = (district: DistrictTarget, work: Work) => Promise<unknown>;

export interface DatabasePaths {
  /** The Student entity of its service. */
  student: EntitySchema;
  tenant: Path;
  explicit: Path;
  /** The explicit path plus the tenant session's set_config (owner: still no policy), to tell RLS from that round trip. */
  explicitWithSession: Path;
  /** Runs one unit of work on each path with the ORM's query log on, and returns the statements each sent. */
  statementsOf(district: DistrictTarget, work: Work): Promise<{ tenant: string[]; explicit: string[] }>;
  close(): Promise<void>;
}

const orm = (entities: EntitySchema[], url: string, poolSize: number, onQuery?: (sql: string) => void) =>
  initOrm({ service: benchService().name, entities, clientUrl: url, poolSize, onQuery });
const tenantPath =
  (app: MikroORM): Path =>
  (district, work) =>
    inTenantTransaction(app, district.tenantId, (em) => work(em, district, Math.random));
const explicitPath =
  (owner: MikroORM): Path =>
  (district, work) => {
    const em = forkForTenant(owner, district.tenantId);
    return em.transactional((tx) => work(tx, district, Math.random));
  };

export async function openDatabasePaths(database: ServiceDatabase, connections: number): Promise<DatabasePaths> {
  const { entities } = await loadSubgraph(benchService());
  const student = entities.find((entity) => entity.meta.className === 'Student');
  if (!student) throw new Error(`the ${benchService().name} subgraph has no Student entity`);
  // Measured without the query log (it costs per statement); a separate pair with the log counts statements.
  const app = await orm(entities, database.appUrl, connections);
  const owner = await orm(entities, database.ownerUrl, 2 * connections);
  return {
    student,
    tenant: tenantPath(app),
    explicit: explicitPath(owner),
    // The owner through the same tenant transaction: its `begin` and set_config, but no policy (BYPASSRLS).
    explicitWithSession: tenantPath(owner),
    async statementsOf(district, work) {
      const logs = { tenant: [] as string[], explicit: [] as string[] };
      const loggedApp = await orm(entities, database.appUrl, 1, (sql) => logs.tenant.push(sql));
      const loggedOwner = await orm(entities, database.ownerUrl, 1, (sql) => logs.explicit.push(sql));
      try {
        await tenantPath(loggedApp)(district, work);
        await explicitPath(loggedOwner)(district, work);
      } finally {
        await loggedApp.close();
        await loggedOwner.close();
      }
      // From `begin` on: the ORM's connection check before it is not part of a request.
      const fromBegin = (log: string[]) =>
        log.slice(
          Math.max(
            0,
            log.findIndex((sql) => /\bbegin\b/.test(sql)),
          ),
        );
      return { tenant: fromBegin(logs.tenant), explicit: fromBegin(logs.explicit) };
    },
    async close() {
      await app.close();
      await owner.close();
    },
  };
}

/** `workers` closed-loop clients for a fixed time: a load generator with no list of work to share, so no p-limit here. */
async function throughput(path: Path, work: Work, districts: DistrictTarget[], workers: number, seconds: number): Promise<number> {
  const until = performance.now() + seconds * 1000;
  let done = 0;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (performance.now() < until) {
        await path(districts[Math.floor(Math.random() * districts.length)]!, work);
        done++;
      }
    }),
  );
  return done / seconds;
}

export interface RlsThroughput {
  connections: number;
  tenantPerSecond: number[];
  explicitPerSecond: number[];
  ratios: number[];
  /** Tenant path over explicit-with-session: what RLS itself costs once both send the same statements. */
  rlsOnlyRatios: number[];
}

/**
 * Figure 1: closed-loop throughput of both paths at the same moment (each with its own `connections`
 * workers and pool), so the shared machine's noise hits both alike; the ratio is tenant / explicit.
 */
export async function measureRlsThroughput(
  paths: DatabasePaths,
  districts: DistrictTarget[],
  options: { connections: number; seconds: number; rounds: number },
): Promise<RlsThroughput> {
  const result: RlsThroughput = {
    connections: options.connections,
    tenantPerSecond: [],
    explicitPerSecond: [],
    ratios: [],
    rlsOnlyRatios: [],
  };
  const work = reads(paths.student);
  const all = (seconds: number) =>
    Promise.all(
      [paths.tenant, paths.explicit, paths.explicitWithSession].map((path) =>
        throughput(path, work, districts, options.connections, seconds),
      ),
    );
  await all(2); // warm-up: JIT, pools, caches
  for (let round = 0; round < options.rounds; round++) {
    const [tenant, explicit, explicitWithSession] = await all(options.seconds);
    result.tenantPerSecond.push(Math.round(tenant!));
    result.explicitPerSecond.push(Math.round(explicit!));
    result.ratios.push(tenant! / explicit!);
    result.rlsOnlyRatios.push(tenant! / explicitWithSession!);
  }
  return result;
}

export interface ContextOverhead {
  withContext: Summary;
  withoutContext: Summary;
  overheadP50Ms: number;
  statementsWith: string[];
  statementsWithout: string[];
}

/** Figure 2: sequential latency of one point lookup in its transaction, with and without the tenant session context. */
export async function measureContextOverhead(
  paths: DatabasePaths,
  districts: DistrictTarget[],
  iterations: number,
): Promise<ContextOverhead> {
  const lookup: Work = (em, district, random) =>
    em.findOne(paths.student, { id: district.samples.studentId![Math.floor(random() * district.samples.studentId!.length)]! });
  const timings = { tenant: [] as number[], explicit: [] as number[] };
  for (let i = 0; i < iterations + 200; i++) {
    const district = districts[i % districts.length]!;
    // Interleaved, so both see the same moment of a shared machine; the first 200 warm up.
    for (const path of ['tenant', 'explicit'] as const) {
      const started = performance.now();
      await paths[path](district, lookup);
      if (i >= 200) timings[path].push(performance.now() - started);
    }
  }
  const statements = await paths.statementsOf(districts[0]!, lookup);
  const withContext = summarize(timings.tenant);
  const withoutContext = summarize(timings.explicit);
  return {
    withContext,
    withoutContext,
    overheadP50Ms: withContext.p50 - withoutContext.p50,
    statementsWith: statements.tenant,
    statementsWithout: statements.explicit,
  };
}
