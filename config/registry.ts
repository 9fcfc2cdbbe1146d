/**
 * The registry of services (schema/subgraphs.json): every subgraph's name, routing URL, port variable and
 * default, database, SDL file, migrations folder and the services whose ids it takes as input. The only list
 * of subgraphs in the code.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));
export const REGISTRY_PATH = resolve(PROJECT_ROOT, 'schema/subgraphs.json');

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
      if (unknown.length) context.addIssue({ code: 'custom', message: `${name} references ${unknown.join(', ')}: not another registered subgraph` });
    }
    const cycle = referenceCycle(registry.subgraphs);
    if (cycle) context.addIssue({ code: 'custom', message: `references form a cycle (${cycle.join(' → ')})` });
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

/** The registered subgraphs, in the order they are migrated and started. */
export function readRegistry(path = REGISTRY_PATH): SubgraphEntry[] {
  const parsed = Registry.safeParse(JSON.parse(readFileSync(path, 'utf8')));
  if (!parsed.success) throw new Error(`${path} is not a valid service registry: ${z.prettifyError(parsed.error)}`);
  return parsed.data.subgraphs;
}

/** Absolute path of a registry path (SDL file, migrations folder). */
export const projectPath = (relativePath: string) => resolve(PROJECT_ROOT, relativePath);
