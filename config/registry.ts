/**
 * The registry of services (schema/subgraphs.json): every subgraph's name, routing URL, port variable and
 * default, database, SDL file, migrations folder, roles (the district directory) and the services whose ids it
 * takes as input. The only list of subgraphs in the code: nothing else names a service; code that needs one by
 * its role or by the tables it holds asks here.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));
export const REGISTRY_PATH = resolve(PROJECT_ROOT, 'schema/subgraphs.json');
/** The committed supergraph (`npm run compose`), relative to the project (as git names it) and absolute. */
export const SUPERGRAPH_FILE = 'schema/supergraph.graphql';
export const SUPERGRAPH_PATH = resolve(PROJECT_ROOT, SUPERGRAPH_FILE);

const identifier = z.string().regex(/^[a-z][a-z0-9_]{0,30}$/, 'lower-case letters, digits and _ (at most 31), starting with a letter');

const SubgraphEntry = z.object({
  name: identifier,
  routingUrl: z.url(),
  port: z.object({
    env: z.string().regex(/^[A-Z][A-Z0-9_]*_PORT$/, 'an upper-case variable name ending in _PORT'),
    default: z.number().int().min(1).max(65535),
  }),
  database: identifier,
  schema: z.string().endsWith('.graphql'),
  migrations: z.string().startsWith('migrations/'),
  /**
   * Services whose entity ids this subgraph's mutations take as input (e.g. students' `schoolId` names a School
   * of districts). For a mutation the gateway signs one extra tenant context per service listed here, and the
   * subgraph looks the ids up through that service before it commits (subgraph-server/references.ts).
   */
  references: z.array(identifier).optional(),
  /** The service holding the district (tenant) directory: its `district` table and `{ district { status } }`, which the gateway and onboarding use. */
  directory: z.boolean().optional(),
});
export type SubgraphEntry = z.infer<typeof SubgraphEntry>;

const Registry = z
  .object({ $comment: z.string().optional(), subgraphs: z.array(SubgraphEntry).min(1) })
  .superRefine((registry, context) => {
    for (const key of ['name', 'database'] as const) {
      const values = registry.subgraphs.map((s) => s[key]);
      const repeated = values.filter((v, i) => values.indexOf(v) !== i);
      if (repeated.length) context.addIssue({ code: 'custom', message: `${key} repeated: ${repeated.join(', ')}` });
    }
    const ports = registry.subgraphs.map((s) => s.port.default);
    if (new Set(ports).size !== ports.length) context.addIssue({ code: 'custom', message: 'default ports repeated' });
    const names = new Set(registry.subgraphs.map((s) => s.name));
    for (const { name, references = [] } of registry.subgraphs) {
      const unknown = references.filter((service) => !names.has(service) || service === name);
      if (unknown.length)
        context.addIssue({ code: 'custom', message: `${name} references ${unknown.join(', ')}: not another registered subgraph` });
    }
    const cycle = referenceCycle(registry.subgraphs);
    if (cycle) context.addIssue({ code: 'custom', message: `references form a cycle (${cycle.join(' → ')})` });
    const envs = registry.subgraphs.map((s) => s.port.env);
    if (new Set(envs).size !== envs.length) context.addIssue({ code: 'custom', message: 'port variables repeated' });
    const directories = registry.subgraphs.filter((s) => s.directory).map((s) => s.name);
    if (directories.length !== 1)
      context.addIssue({
        code: 'custom',
        message: `exactly one subgraph must be the district directory ("directory": true); found ${directories.length ? directories.join(', ') : 'none'}`,
      });
  });

/**
 * A subgraph holds its request's database connection while it waits on the services it references; a cycle
 * could leave every connection of two pools waiting on the other. Returns one cycle, or undefined.
 */
function referenceCycle(subgraphs: { name: string; references?: string[] }[]): string[] | undefined {
  const edges = new Map(subgraphs.map((s) => [s.name, s.references ?? []]));
  const done = new Set<string>();
  const visit = (name: string, path: string[]): string[] | undefined => {
    if (path.includes(name)) return [...path.slice(path.indexOf(name)), name];
    if (done.has(name)) return undefined;
    for (const next of edges.get(name) ?? []) {
      const cycle = visit(next, [...path, name]);
      if (cycle) return cycle;
    }
    done.add(name);
    return undefined;
  };
  for (const name of edges.keys()) {
    const cycle = visit(name, []);
    if (cycle) return cycle;
  }
  return undefined;
}

function parseRegistry(path: string, json: unknown): z.infer<typeof Registry> {
  const parsed = Registry.safeParse(json);
  if (!parsed.success) throw new Error(`${path} is not a valid service registry: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

/** The registered subgraphs, in the order they are migrated and started. */
export function readRegistry(path = REGISTRY_PATH): SubgraphEntry[] {
  return parseRegistry(path, JSON.parse(readFileSync(path, 'utf8'))).subgraphs;
}

/** One entry per block, its port on one line: the layout of the committed file, so an append diffs as one block. */
function formatRegistry(registry: z.infer<typeof Registry>): string {
  const entry = (s: SubgraphEntry) => {
    const lines = Object.entries(s).map(
      ([key, value]) =>
        `      ${JSON.stringify(key)}: ${key === 'port' ? `{ "env": ${JSON.stringify(s.port.env)}, "default": ${s.port.default} }` : JSON.stringify(value)}`,
    );
    return `    {\n${lines.join(',\n')}\n    }`;
  };
  const head = registry.$comment === undefined ? '' : `  "$comment": ${JSON.stringify(registry.$comment)},\n`;
  return `{\n${head}  "subgraphs": [\n${registry.subgraphs.map(entry).join(',\n')}\n  ]\n}\n`;
}

/** Appends a subgraph to the registry file (validated as a whole first; `npm run subgraph:new` uses it). */
export function appendToRegistry(added: SubgraphEntry, path = REGISTRY_PATH): void {
  const current = parseRegistry(path, JSON.parse(readFileSync(path, 'utf8')));
  const next = parseRegistry(path, { ...current, subgraphs: [...current.subgraphs, added] });
  writeFileSync(path, formatRegistry(next));
}

/** Rewrites the registry file in its committed layout (a test checks the committed file is in it). */
export const formattedRegistry = (path = REGISTRY_PATH) => formatRegistry(parseRegistry(path, JSON.parse(readFileSync(path, 'utf8'))));

/** Absolute path of a registry path (SDL file, migrations folder). */
export const projectPath = (relativePath: string) => resolve(PROJECT_ROOT, relativePath);

/** The service that holds the district directory (the tenants and their status). */
export function directoryService(entries = readRegistry()): SubgraphEntry {
  return entries.find((s) => s.directory)!;
}

/** The MikroORM schema snapshot of a service's migrations: the tables its migrations create. */
export const snapshotName = (entry: Pick<SubgraphEntry, 'name'>) => `.snapshot-${entry.name}`;
export const snapshotPath = (entry: Pick<SubgraphEntry, 'name' | 'migrations'>) =>
  projectPath(`${entry.migrations}/${snapshotName(entry)}.json`);

/** The tables a service's migrations create (from its migration snapshot; none before its first migration). */
export function tablesOf(entry: SubgraphEntry): string[] {
  const path = snapshotPath(entry);
  if (!existsSync(path)) return [];
  const snapshot = JSON.parse(readFileSync(path, 'utf8')) as { tables: { name: string; schema?: string }[] };
  return snapshot.tables.map((table) => table.name);
}

/**
 * The registered service whose migrations create `table`. Tools that work on specific tables (the load
 * seed, consolidation, the bench) find their database this way instead of naming a service.
 */
export function serviceOwning(table: string, entries = readRegistry()): SubgraphEntry {
  const owners = entries.filter((entry) => tablesOf(entry).includes(table));
  if (owners.length === 1) return owners[0]!;
  const registered = entries.map((s) => s.name).join(', ');
  if (owners.length === 0)
    throw new Error(
      `no registered service (${registered}) has a table "${table}": register the service that holds it in schema/subgraphs.json`,
    );
  throw new Error(`table "${table}" exists in several services (${owners.map((s) => s.name).join(', ')}); name the table unambiguously`);
}
