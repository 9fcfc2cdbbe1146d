/**
 * What the graph offers, read from the registered subgraphs' SDL and the composed supergraph rather than
 * written out, so the isolation battery and the feature steps cover a newly generated subgraph too:
 * each subgraph's `@key(fields: "id")` types and by-id lookups, and every list a district can read.
 */
import { readFileSync } from 'node:fs';
import { UnderscoreNamingStrategy } from '@mikro-orm/core';
import {
  buildASTSchema,
  getNamedType,
  isListType,
  isNonNullType,
  isObjectType,
  Kind,
  parse,
  type DefinitionNode,
  type FieldDefinitionNode,
  type ObjectTypeDefinitionNode,
  type OperationDefinitionNode,
  type TypeNode,
} from 'graphql';
import { projectPath, readRegistry } from '../../config/registry.ts';

export interface SubgraphShape {
  name: string;
  /** Types with `@key(fields: "id")` and the table their entity maps to (by MikroORM's naming). */
  keyed: { type: string; table: string }[];
  /** Query fields taking exactly `id: ID!` and answering one object, with that object's table. */
  lookups: { field: string; type: string; table: string }[];
}

const naming = new UnderscoreNamingStrategy();
const namedType = (type: TypeNode): string => (type.kind === Kind.NAMED_TYPE ? type.name.value : namedType(type.type));

/** Each registered subgraph's keyed types and by-id lookups, from its SDL file. */
export function subgraphShapes(): SubgraphShape[] {
  return readRegistry().map((entry) => {
    const objects = (parse(readFileSync(projectPath(entry.schema), 'utf8')).definitions as DefinitionNode[]).filter(
      (d): d is ObjectTypeDefinitionNode => d.kind === Kind.OBJECT_TYPE_DEFINITION,
    );
    const keyed = objects
      .filter((o) =>
        o.directives?.some(
          (d) => d.name.value === 'key' && d.arguments?.some((a) => a.value.kind === Kind.STRING && a.value.value === 'id'),
        ),
      )
      .map((o) => ({ type: o.name.value, table: naming.classToTableName(o.name.value) }));
    const isLookup = (f: FieldDefinitionNode) =>
      f.arguments?.length === 1 &&
      f.arguments[0]!.name.value === 'id' &&
      f.arguments[0]!.type.kind === Kind.NON_NULL_TYPE &&
      f.type.kind === Kind.NAMED_TYPE;
    const lookups = objects
      .filter((o) => o.name.value === 'Query')
      .flatMap((o) => (o.fields ?? []).filter(isLookup))
      .map((f) => ({ field: f.name.value, type: namedType(f.type), table: naming.classToTableName(namedType(f.type)) }));
    return { name: entry.name, keyed, lookups };
  });
}

/**
 * Every list a district can read with no argument, from the supergraph: each Query field whose arguments are
 * all optional and whose type is a list of objects with an `id`, selected as `field { id }`.
 */
export function listFields(): string[] {
  const schema = buildASTSchema(parse(readFileSync(projectPath('schema/supergraph.graphql'), 'utf8')), { assumeValidSDL: true });
  const query = schema.getQueryType();
  if (!query) return [];
  return Object.values(query.getFields())
    .filter((field) => field.args.every((arg) => !isNonNullType(arg.type) || arg.defaultValue !== undefined))
    .filter((field) => {
      const type = isNonNullType(field.type) ? field.type.ofType : field.type;
      const item = getNamedType(type);
      return isListType(type) && isObjectType(item) && 'id' in item.getFields();
    })
    .map((field) => field.name);
}

/** `base` (a `{ … }` selection) with every list field it does not select yet added as `field { id }`. */
export function withEveryList(base: string): string {
  const operation = parse(base).definitions[0] as OperationDefinitionNode;
  const selected = new Set(operation.selectionSet.selections.map((s) => (s.kind === Kind.FIELD ? s.name.value : '')));
  const added = listFields().filter((field) => !selected.has(field));
  return `${base.trim().slice(0, -1).trimEnd()}\n  ${added.map((field) => `${field} { id }`).join('\n  ')}\n}`;
}
