/**
 * create, list, show, suspend, resume (docs/district-lifecycle.md). Each runs as the owner role of the service
 * databases; every command that changes a district records one event in its audit trail (tools/district/audit.ts)
 * in the transaction that makes the change.
 */
import { isTombstone } from './offboard.ts';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { parse } from 'csv-parse/sync';
import pg, { escapeIdentifier } from 'pg';
import { readConfig } from '../../config/config.ts';
import type { ServiceDatabase } from '../../database/database.ts';
import { DISTRICT_STATUSES, type DistrictStatus } from '../../tenancy/district-status.ts';
import { isUuid } from '../../tenancy/tenant-context.ts';
import { registerDistrict, RegistrationConflict, setDistrictStatus } from '../onboarding.ts';
import { directoryDatabase, withClient, withServiceDatabases } from '../operator-cli.ts';
import { districtEvents, operatorName, recordDistrictEvent } from './audit.ts';
import { notifyGateways } from './status-publish.ts';

/** Bad input or an unmet precondition: exit code 2, nothing changed. */
export class Refused extends Error {}

const SLUG = /^[a-z0-9][a-z0-9-]{0,99}$/;
/** Fixed namespace of the slug-derived district ids (a UUID version 5 name space). */
const DISTRICT_ID_NAMESPACE = '5b0c7a4e-6f2d-4b8e-9a51-3c1d2e4f6a70';

/** The id a district gets when none is given: a UUID version 5 of its slug, so a rerun names the same district. */
export function districtIdFromSlug(slug: string): string {
  const hash = createHash('sha1')
    .update(Buffer.from(DISTRICT_ID_NAMESPACE.replaceAll('-', ''), 'hex'))
    .update(slug)
    .digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

interface DistrictRow {
  tenantId: string;
  slug: string;
  name: string;
  status: DistrictStatus;
  createdAt: string;
}

interface NewDistrict {
  tenantId: string;
  slug: string;
  name: string;
  /** Where it came from, for error messages: `--slug` or `<file>:<line>`. */
  source: string;
}

/** Problems of one requested district (empty when valid). */
function problemsOf(slug: unknown, name: unknown, id: unknown): string[] {
  const problems: string[] = [];
  if (typeof slug !== 'string' || !SLUG.test(slug)) problems.push(`slug ${JSON.stringify(slug ?? '')} must be 1-100 of a-z, 0-9 and -`);
  if (typeof name !== 'string' || !name.trim() || name.length > 200) problems.push('name must be 1-200 characters');
  if (id !== undefined && id !== '' && !isUuid(id)) problems.push(`id ${JSON.stringify(id)} is not a UUID`);
  return problems;
}

function toNewDistrict(slug: string, name: string, id: string | undefined, source: string): NewDistrict {
  return { slug, name: name.trim(), tenantId: id ? id.toLowerCase() : districtIdFromSlug(slug), source };
}

/** Reads `slug,name[,id]`; every bad row is reported (with its line) before anything is written. */
export async function readDistrictsFile(file: string): Promise<NewDistrict[]> {
  const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new Refused(`cannot read ${file}: ${error.code ?? error.message}`);
  });
  let records: { record: Record<string, string>; info: { lines: number } }[];
  try {
    records = parse(text, { columns: true, skip_empty_lines: true, trim: true, bom: true, info: true, relax_column_count: false });
  } catch (error) {
    throw new Refused(`${file}: ${(error as Error).message}`);
  }
  const header = text
    .replace(/^\uFEFF/, '')
    .split(/\r?\n/, 1)[0]!
    .split(',')
    .map((column) => column.trim());
  if (header[0] !== 'slug' || header[1] !== 'name' || header.length > 3 || (header.length === 3 && header[2] !== 'id'))
    throw new Refused(`${file}: the header must be slug,name or slug,name,id`);
  const problems: string[] = [];
  const districts: NewDistrict[] = [];
  const bySlug = new Map<string, number>();
  const byId = new Map<string, number>();
  for (const { record, info } of records) {
    const line = info.lines;
    const rowProblems = problemsOf(record.slug, record.name, record.id);
    if (rowProblems.length) {
      problems.push(`${file}:${line}: ${rowProblems.join('; ')}`);
      continue;
    }
    const district = toNewDistrict(record.slug!, record.name!, record.id || undefined, `${file}:${line}`);
    const sameSlug = bySlug.get(district.slug);
    const sameId = byId.get(district.tenantId);
    if (sameSlug !== undefined) problems.push(`${file}:${line}: slug ${district.slug} repeats line ${sameSlug}`);
    else if (sameId !== undefined) problems.push(`${file}:${line}: id ${district.tenantId} repeats line ${sameId}`);
    else {
      bySlug.set(district.slug, line);
      byId.set(district.tenantId, line);
      districts.push(district);
    }
  }
  if (problems.length) throw new Refused(`${problems.length} bad row(s), nothing written:\n${problems.join('\n')}`);
  if (!districts.length) throw new Refused(`${file}: no districts`);
  return districts;
}

async function inTransaction<T>(client: pg.ClientBase, work: () => Promise<T>): Promise<T> {
  await client.query('begin');
  try {
    const result = await work();
    await client.query('commit');
    return result;
  } catch (error) {
    await client.query('rollback');
    throw error;
  }
}

const SELECT_DISTRICT = `select tenant_id as "tenantId", slug, name, status, created_at as "createdAt" from district`;
type DistrictRecord = Omit<DistrictRow, 'createdAt'> & { createdAt: Date };
const asDistrict = (row: DistrictRecord): DistrictRow => ({
  ...row,
  createdAt: row.createdAt.toISOString(),
});

/** A district by id or slug; refused when there is none. */
async function findDistrict(directory: pg.ClientBase, reference: string): Promise<DistrictRow> {
  const { rows } = isUuid(reference)
    ? await directory.query<DistrictRecord>(`${SELECT_DISTRICT} where tenant_id = $1`, [reference.toLowerCase()])
    : await directory.query<DistrictRecord>(`${SELECT_DISTRICT} where slug = $1`, [reference]);
  if (!rows.length) throw new Refused(`no district ${reference}`);
  if (rows.length > 1) throw new Refused(`slug ${reference} names ${rows.length} districts; use the id`);
  return asDistrict(rows[0]!);
}

/** Requested districts that clash with the directory: same id under another slug or name, or the slug taken by another id. */
async function conflictsOf(directory: pg.ClientBase, districts: NewDistrict[]): Promise<string[]> {
  const { rows } = await directory.query<{ tenantId: string; slug: string; name: string }>(
    'select tenant_id as "tenantId", slug, name from district where tenant_id = any($1::uuid[]) or slug = any($2::text[])',
    [districts.map((d) => d.tenantId), districts.map((d) => d.slug)],
  );
  const byId = new Map(rows.map((row) => [row.tenantId, row]));
  const bySlug = new Map(rows.map((row) => [row.slug, row]));
  const conflicts: string[] = [];
  for (const district of districts) {
    const sameId = byId.get(district.tenantId);
    const sameSlug = bySlug.get(district.slug);
    if (sameId && (sameId.slug !== district.slug || sameId.name !== district.name))
      conflicts.push(`${district.source}: ${district.tenantId} is already registered as "${sameId.slug}" (${sameId.name})`);
    else if (sameSlug && sameSlug.tenantId !== district.tenantId)
      conflicts.push(`${district.source}: slug ${district.slug} already belongs to district ${sameSlug.tenantId}`);
  }
  return conflicts;
}

interface CreateSummary {
  created: string[];
  unchanged: string[];
  seconds: number;
}

async function createDistricts(
  databases: ServiceDatabase[],
  districts: NewDistrict[],
  actor: string,
  progress: boolean,
): Promise<CreateSummary> {
  const started = performance.now();
  return withClient(directoryDatabase(databases).ownerUrl, async (directory) => {
    const conflicts = await conflictsOf(directory, districts);
    if (conflicts.length) throw new Refused(`${conflicts.length} conflicting registration(s), nothing written:\n${conflicts.join('\n')}`);
    const bar = new cliProgress.SingleBar(
      {
        format: 'onboarding {bar} {percentage}% | {value}/{total} districts | ETA {eta_formatted}',
        stream: process.stderr,
        noTTYOutput: true,
        notTTYSchedule: 5000,
      },
      cliProgress.Presets.shades_classic,
    );
    const showBar = progress && districts.length > 1;
    if (showBar) bar.start(districts.length, 0);
    const summary: CreateSummary = { created: [], unchanged: [], seconds: 0 };
    try {
      for (const district of districts) {
        // One transaction per district: the registration and its audit event, or neither.
        await inTransaction(directory, async () => {
          const { created } = await registerDistrict(directory, district, 'active');
          if (created)
            await recordDistrictEvent(directory, district.tenantId, 'create', { slug: district.slug, name: district.name }, actor);
          (created ? summary.created : summary.unchanged).push(district.slug);
        }).catch((error: unknown) => {
          throw error instanceof RegistrationConflict ? new Refused(`${district.source}: ${error.message}`) : error;
        });
        if (showBar) bar.increment();
      }
    } finally {
      if (showBar) bar.stop();
    }
    summary.seconds = Math.round(performance.now() - started) / 1000;
    return summary;
  });
}

/** Row counts of the district in every tenant table of every service database, counted as the owner. */
async function rowCounts(databases: ServiceDatabase[], tenantId: string): Promise<Record<string, Record<string, number>>> {
  const counts: Record<string, Record<string, number>> = {};
  for (const database of databases) {
    counts[database.service] = await withClient(database.ownerUrl, async (client) => {
      const { rows: tables } = await client.query<{ name: string }>(
        `select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
          join pg_attribute a on a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped
          where n.nspname = 'public' and c.relkind in ('r', 'p') order by c.relname`,
      );
      const perTable: Record<string, number> = {};
      for (const { name } of tables) {
        const { rows } = await client.query<{ count: string }>(`select count(*) from ${escapeIdentifier(name)} where tenant_id = $1`, [
          tenantId,
        ]);
        perTable[name] = Number(rows[0]!.count);
      }
      return perTable;
    });
  }
  return counts;
}

interface StatusChange {
  district: DistrictRow;
  from: DistrictStatus;
  to: DistrictStatus;
  changed: boolean;
  /** Subscribers told over Redis, or null without REDIS_URL. */
  notified: number | null;
  propagation: string;
}

async function changeStatus(
  databases: ServiceDatabase[],
  reference: string,
  to: 'active' | 'suspended',
  actor: string,
): Promise<StatusChange> {
  const config = readConfig();
  const { district, from } = await withClient(directoryDatabase(databases).ownerUrl, async (directory) =>
    inTransaction(directory, async () => {
      const found = await findDistrict(directory, reference);
      const locked = await directory.query<{ status: DistrictStatus }>('select status from district where tenant_id = $1 for update', [
        found.tenantId,
      ]);
      const current = locked.rows[0]!.status;
      if (current === 'migrating') throw new Refused(`district ${found.slug} is being migrated; its status is not changed`);
      if (to === 'active' && isTombstone(found)) throw new Refused(`district ${found.tenantId} was offboarded; restore it first`);
      if (current !== to) {
        await setDistrictStatus(directory, found.tenantId, to);
        await recordDistrictEvent(directory, found.tenantId, to === 'suspended' ? 'suspend' : 'resume', { from: current, to }, actor);
      }
      return { district: { ...found, status: to }, from: current };
    }),
  );
  const changed = from !== to;
  let notified: number | null = null;
  let propagation: string;
  if (!changed) propagation = 'no change';
  else if (config.redisUrl) {
    notified = await notifyGateways(config.redisUrl, district.tenantId).catch((error: unknown) => {
      throw new Error(
        `status written, but publishing on Redis failed (gateways notice within ${2 * config.districtStatusTtlMs} ms): ${(error as Error).message}`,
      );
    });
    propagation = `published on Redis (${notified} subscriber(s))`;
  } else propagation = `no REDIS_URL: gateways notice within ${2 * config.districtStatusTtlMs} ms (2 × DISTRICT_STATUS_TTL_MS)`;
  return { district, from, to, changed, notified, propagation };
}

/** Runs one command: prints its result, sets the exit code (0 done, 1 failed, 2 refused), one line per error. */
function action<A extends unknown[]>(work: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await work(...args);
      process.exitCode = 0;
    } catch (error) {
      const refused = error instanceof Refused;
      console.error(`district: ${refused ? 'refused' : 'failed'}: ${error instanceof Error ? error.message : String(error)}`);
      process.exitCode = refused ? 2 : 1;
    }
  };
}

const print = (json: boolean, value: unknown, text: string) => console.log(json ? JSON.stringify(value, null, 2) : text);

/** create, list, show, suspend, resume. */
export function registerLifecycleCommands(program: Command): void {
  program
    .command('create')
    .description(
      'Register a district (--slug, --name, optional --id) or every district of a CSV file (slug,name[,id]); a rerun changes nothing',
    )
    .option('--slug <slug>', 'the district slug (a-z, 0-9, -)')
    .option('--name <name>', 'the district name')
    .option('--id <uuid>', 'the district id (default: derived from the slug, UUID v5)')
    .option('--from-file <csv>', 'a CSV file with the header slug,name[,id]')
    .option('--actor <name>', 'who does this, for the audit trail (default: the OS user)')
    .option('--json', 'print the result as JSON')
    .option('--no-progress', 'no progress bar on stderr')
    .action(
      action(
        async (options: {
          slug?: string;
          name?: string;
          id?: string;
          fromFile?: string;
          actor?: string;
          json?: boolean;
          progress: boolean;
        }) => {
          let districts: NewDistrict[];
          if (options.fromFile) {
            if (options.slug || options.name || options.id) throw new Refused('give either --from-file or --slug/--name/--id');
            districts = await readDistrictsFile(options.fromFile);
          } else {
            const problems = problemsOf(options.slug, options.name, options.id);
            if (problems.length) throw new Refused(problems.join('; '));
            districts = [toNewDistrict(options.slug!, options.name!, options.id, '--slug')];
          }
          const actor = operatorName(options.actor);
          const summary = await withServiceDatabases((databases) => createDistricts(databases, districts, actor, options.progress));
          print(
            !!options.json,
            { ...summary, districts: districts.map(({ tenantId, slug, name }) => ({ tenantId, slug, name })) },
            summary.created.length
              ? `created ${summary.created.length} district(s), ${summary.unchanged.length} already registered, in ${summary.seconds} s`
              : `nothing to do: all ${summary.unchanged.length} district(s) already registered`,
          );
        },
      ),
    );

  program
    .command('list')
    .description('The registered districts: slug, id, name, status')
    .option('--status <status>', `only districts with this status (${DISTRICT_STATUSES.join(', ')})`)
    .option('--json', 'print the result as JSON')
    .action(
      action(async (options: { status?: string; json?: boolean }) => {
        if (options.status && !(DISTRICT_STATUSES as readonly string[]).includes(options.status))
          throw new Refused(`--status must be one of ${DISTRICT_STATUSES.join(', ')}`);
        const districts = await withServiceDatabases((databases) =>
          withClient(directoryDatabase(databases).ownerUrl, async (directory) => {
            const { rows } = options.status
              ? await directory.query<DistrictRecord>(`${SELECT_DISTRICT} where status = $1 order by slug`, [options.status])
              : await directory.query<DistrictRecord>(`${SELECT_DISTRICT} order by slug`);
            return rows.map(asDistrict);
          }),
        );
        print(
          !!options.json,
          districts,
          districts.map((d) => `${d.slug}\t${d.tenantId}\t${d.status}\t${d.name}`).join('\n') || '(no districts)',
        );
      }),
    );

  program
    .command('show <district>')
    .description("A district (slug or id): its status, its row count in every service's tenant tables, its latest audit events")
    .option('--json', 'print the result as JSON')
    .action(
      action(async (reference: string, options: { json?: boolean }) => {
        const shown = await withServiceDatabases(async (databases) => {
          const { district, events } = await withClient(directoryDatabase(databases).ownerUrl, async (directory) => {
            const found = await findDistrict(directory, reference);
            return { district: found, events: await districtEvents(directory, found.tenantId) };
          });
          return { ...district, rows: await rowCounts(databases, district.tenantId), events };
        });
        const lines = [
          `${shown.slug} (${shown.name})`,
          `id      ${shown.tenantId}`,
          `status  ${shown.status}`,
          `created ${shown.createdAt}`,
          'rows:',
          ...Object.entries(shown.rows).flatMap(([service, tables]) =>
            Object.entries(tables).map(([table, count]) => `  ${service}.${table}\t${count}`),
          ),
          'events (newest first):',
          ...(shown.events.length
            ? shown.events.map((e) => `  ${e.at}\t${e.action}\t${e.actor}\t${JSON.stringify(e.details)}`)
            : ['  (none)']),
        ];
        print(!!options.json, shown, lines.join('\n'));
      }),
    );

  for (const [name, to] of [
    ['suspend', 'suspended'],
    ['resume', 'active'],
  ] as const) {
    program
      .command(`${name} <district>`)
      .description(
        `${name === 'suspend' ? 'Stop serving' : 'Serve again'} a district (slug or id); published on Redis when REDIS_URL is set`,
      )
      .option('--actor <name>', 'who does this, for the audit trail (default: the OS user)')
      .option('--json', 'print the result as JSON')
      .action(
        action(async (reference: string, options: { actor?: string; json?: boolean }) => {
          const actor = operatorName(options.actor);
          const change = await withServiceDatabases((databases) => changeStatus(databases, reference, to, actor));
          print(
            !!options.json,
            change,
            change.changed
              ? `${change.district.slug}: ${change.from} -> ${change.to}; ${change.propagation}`
              : `${change.district.slug}: already ${change.to}, nothing changed`,
          );
        }),
      );
  }
}
