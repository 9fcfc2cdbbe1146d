/**
 * `npm run subgraph:new -- <name>`: a working tenant-isolated subgraph in one command (docs/adding-a-subgraph.md).
 * Writes subgraphs/<name>/ from the templates beside this file (SDL with one `@key` entity, its tenant table
 * entity, resolvers with the per-request DataLoader, index, demo data), appends the registry entry (next free
 * port, `<NAME>_PORT`, its own database), recomposes schema/supergraph.graphql and generates the first
 * migration with MikroORM's generator (tenant function, table, FORCEd RLS, policy; plus its snapshot).
 * Nothing else needs editing: everything that lists services reads the registry. On any failure it puts
 * every file back as it was.
 */
import '../../config/node-version.ts';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UnderscoreNamingStrategy } from '@mikro-orm/core';
import { Kind, parse, type DefinitionNode } from 'graphql';
import {
  appendToRegistry,
  projectPath,
  readRegistry,
  REGISTRY_PATH,
  SUPERGRAPH_PATH,
  tablesOf,
  type SubgraphEntry,
} from '../../config/registry.ts';
import { composeSupergraph } from '../../schema/compose.ts';
import { createMigration } from '../migration-create.ts';
import { runCli } from '../operator-cli.ts';

const TEMPLATES = fileURLToPath(new URL('./templates/', import.meta.url));
const GATEWAY_DEFAULT_PORT = 4000;

/**
 * Names that would collide with something the platform already uses: configuration variables (GATEWAY_PORT,
 * EMBEDDED_PG_PORT), PostgreSQL schemas and databases, GraphQL root and scalar types, and SQL keywords that
 * cannot name a table unquoted.
 */
const RESERVED = new Set([
  'gateway',
  'embedded_pg',
  'app',
  'public',
  'consolidation',
  'pg',
  'postgres',
  'template0',
  'template1',
  'information_schema',
  'owner',
  'query',
  'mutation',
  'subscription',
  'schema',
  'string',
  'int',
  'float',
  'boolean',
  'id',
  'node',
  'all',
  'analyse',
  'analyze',
  'and',
  'any',
  'array',
  'as',
  'asc',
  'case',
  'cast',
  'check',
  'collate',
  'column',
  'constraint',
  'create',
  'current_user',
  'default',
  'desc',
  'distinct',
  'do',
  'else',
  'end',
  'except',
  'false',
  'fetch',
  'for',
  'foreign',
  'from',
  'grant',
  'group',
  'having',
  'in',
  'intersect',
  'into',
  'lateral',
  'limit',
  'not',
  'null',
  'offset',
  'on',
  'only',
  'or',
  'order',
  'primary',
  'references',
  'returning',
  'select',
  'session_user',
  'some',
  'table',
  'then',
  'to',
  'true',
  'union',
  'unique',
  'user',
  'using',
  'when',
  'where',
  'window',
  'with',
]);

/** The names a subgraph's parts take from its registry name (`bus_routes` → BusRoute, bus_route, busRoutes, busRoute). */
export function namesOf(name: string) {
  const words = name.split('_');
  const last = words.at(-1)!;
  // Naive singular: drop a plural s (not from -ss, -us, -is words such as class, status, analysis).
  if (last.length > 3 && last.endsWith('s') && !/(ss|us|is)$/.test(last)) words[words.length - 1] = last.slice(0, -1);
  const singular = words.at(-1)!;
  const pluralWord = /(s|x|z|ch|sh)$/.test(singular) ? `${singular}es` : `${singular}s`;
  const capital = (w: string) => w[0]!.toUpperCase() + w.slice(1);
  const entity = words.map(capital).join('');
  const camel = entity[0]!.toLowerCase() + entity.slice(1);
  const pluralCamel = camel.slice(0, camel.length - singular.length) + pluralWord;
  return {
    name,
    entity,
    table: new UnderscoreNamingStrategy().classToTableName(entity),
    item: camel,
    list: pluralCamel,
    label: words.join(' '),
    labels: [...words.slice(0, -1), pluralWord].join(' '),
    envVar: `${name.toUpperCase()}_PORT`,
  };
}
export type SubgraphNames = ReturnType<typeof namesOf>;

/** What the existing subgraphs define: type names and root fields, which the new SDL must not redefine. */
function definedByRegisteredSubgraphs(entries: SubgraphEntry[]) {
  const types = new Set<string>();
  const rootFields = new Set<string>();
  for (const entry of entries) {
    for (const definition of parse(readFileSync(projectPath(entry.schema), 'utf8')).definitions as DefinitionNode[]) {
      if (!('name' in definition) || !definition.name) continue;
      const typeName = definition.name.value;
      const isRoot = typeName === 'Query' || typeName === 'Mutation';
      if (!isRoot) types.add(typeName);
      else if (definition.kind === Kind.OBJECT_TYPE_DEFINITION || definition.kind === Kind.OBJECT_TYPE_EXTENSION) {
        for (const field of definition.fields ?? []) rootFields.add(`${typeName}.${field.name.value}`);
      }
    }
  }
  return { types, rootFields };
}

/** Every reason `name` cannot be a new subgraph; empty when it can. */
export function problemsWithName(name: string, entries = readRegistry()): string[] {
  if (!/^[a-z][a-z0-9]*(_[a-z0-9]+)*$/.test(name))
    return [`"${name}" must be a lower-case identifier: letters and digits, words joined by single underscores, starting with a letter`];
  if (name.length > 24)
    return [`"${name}" is longer than 24 characters (it also names the database and the roles, which PostgreSQL caps at 63)`];
  const names = namesOf(name);
  const problems: string[] = [];
  if (RESERVED.has(name) || RESERVED.has(names.table)) problems.push(`"${name}" is a reserved word here`);
  if (entries.some((s) => s.name === name || s.database === name))
    problems.push(`"${name}" is already registered in schema/subgraphs.json`);
  if (entries.some((s) => s.port.env === names.envVar)) problems.push(`${names.envVar} is already the port variable of another subgraph`);
  for (const folder of [`subgraphs/${name}`, `migrations/${name}`]) {
    if (existsSync(projectPath(folder)) && readdirSync(projectPath(folder)).length) problems.push(`${folder}/ already exists`);
  }
  const owner = entries.find((s) => tablesOf(s).includes(names.table));
  if (owner) problems.push(`the ${owner.name} service already has a table "${names.table}"`);
  const { types, rootFields } = definedByRegisteredSubgraphs(entries);
  for (const type of [names.entity, `Create${names.entity}Input`])
    if (types.has(type)) problems.push(`the supergraph already has a type ${type}`);
  for (const field of [`Query.${names.list}`, `Query.${names.item}`, `Mutation.create${names.entity}`])
    if (rootFields.has(field)) problems.push(`the supergraph already has ${field}`);
  return problems;
}

function render(template: string, names: SubgraphNames): string {
  const values: Record<string, string> = {
    __Entity__: names.entity,
    __name__: names.name,
    __labels__: names.labels,
    __label__: names.label,
    __list__: names.list,
    __item__: names.item,
  };
  return template.replace(/__(Entity|name|labels|label|list|item)__/g, (token) => values[token]!);
}

/** The entry the registry gets: the next port after every one in use, `<NAME>_PORT`, a database of its own. */
export function registryEntry(name: string, entries = readRegistry()): SubgraphEntry {
  const port = Math.max(GATEWAY_DEFAULT_PORT, ...entries.map((s) => s.port.default)) + 1;
  return {
    name,
    routingUrl: `http://127.0.0.1:${port}/graphql`,
    port: { env: namesOf(name).envVar, default: port },
    database: name,
    schema: `subgraphs/${name}/schema.graphql`,
    migrations: `migrations/${name}`,
  };
}

export interface CreatedSubgraph {
  names: SubgraphNames;
  entry: SubgraphEntry;
  /** Paths relative to the project, every file written or changed. */
  files: string[];
}

export async function createSubgraph(name: string): Promise<CreatedSubgraph> {
  const entries = readRegistry();
  const problems = problemsWithName(name, entries);
  if (problems.length) throw new Error(problems.join('; '));
  const names = namesOf(name);
  const entry = registryEntry(name, entries);
  const folder = projectPath(`subgraphs/${name}`);
  const migrations = projectPath(entry.migrations);
  const saved = { registry: readFileSync(REGISTRY_PATH, 'utf8'), supergraph: readFileSync(SUPERGRAPH_PATH, 'utf8') };
  const files: string[] = [];
  try {
    mkdirSync(folder, { recursive: true });
    for (const template of readdirSync(TEMPLATES)
      .filter((f) => f.endsWith('.tmpl'))
      .sort()) {
      const file = template.slice(0, -'.tmpl'.length);
      writeFileSync(join(folder, file), render(readFileSync(join(TEMPLATES, template), 'utf8'), names));
      files.push(`subgraphs/${name}/${file}`);
    }
    appendToRegistry(entry);
    files.push('schema/subgraphs.json');
    writeFileSync(SUPERGRAPH_PATH, composeSupergraph());
    files.push('schema/supergraph.graphql');
    // Resolver types from the new SDL (codegen.ts reads the registry, so it covers the new subgraph too).
    execFileSync(process.execPath, [projectPath('node_modules/@graphql-codegen/cli/esm/bin.js'), '--config', 'codegen.ts', '--silent'], {
      cwd: projectPath('.'),
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    files.push(`subgraphs/${name}/generated/resolvers-types.ts`);
    const migration = await createMigration(name, 'initial');
    if (!migration) throw new Error('the migration generator found nothing to create');
    files.push(`${entry.migrations}/${migration}`, `${entry.migrations}/.snapshot-${name}.json`);
    return { names, entry, files };
  } catch (error) {
    rmSync(folder, { recursive: true, force: true });
    rmSync(migrations, { recursive: true, force: true });
    writeFileSync(REGISTRY_PATH, saved.registry);
    writeFileSync(SUPERGRAPH_PATH, saved.supergraph);
    throw error;
  }
}

if (import.meta.main) {
  const name = process.argv[2];
  await runCli('subgraph:new', async () => {
    if (!name || process.argv.length > 3)
      throw new Error('usage: npm run subgraph:new -- <name>   (a lower-case identifier, e.g. attendance)');
    const created = await createSubgraph(name);
    const { names, entry } = created;
    console.log(
      [
        `created the ${name} subgraph: type ${names.entity} (table ${names.table}), Query.${names.list}, Query.${names.item}, Mutation.create${names.entity}`,
        ...created.files.map((file) => `  ${file}`),
        `port ${entry.port.default} (${entry.port.env}), database <DB_PREFIX>_${entry.database}`,
        'next: npm run migrate (or npm start), npm test; then make the entity yours (docs/adding-a-subgraph.md)',
      ].join('\n'),
    );
    return 0;
  });
}
