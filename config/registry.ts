/**
 * The registry of services (schema/subgraphs.json): every subgraph's name, routing URL, port variable and
 * default, database, SDL file and migrations folder. The only list of subgraphs in the code.
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
  });

/** The registered subgraphs, in the order they are migrated and started. */
export function readRegistry(path = REGISTRY_PATH): SubgraphEntry[] {
  const parsed = Registry.safeParse(JSON.parse(readFileSync(path, 'utf8')));
  if (!parsed.success) throw new Error(`${path} is not a valid service registry: ${z.prettifyError(parsed.error)}`);
  return parsed.data.subgraphs;
}

/** Absolute path of a registry path (SDL file, migrations folder). */
export const projectPath = (relativePath: string) => resolve(PROJECT_ROOT, relativePath);
