/**
 * Operation limits: what one GraphQL operation may ask for, checked before any execution, by the gateway and by
 * every subgraph (a subgraph does not trust that its caller went through the gateway). `preflight` checks the
 * request's text before Apollo sees it — before graphql-js's validation, whose overlapping-fields rule is
 * quadratic in a selection set, and at a subgraph before its tenant transaction opens; the gateway's Apollo
 * plugin checks again once the operation is resolved, before the query plan (an automatic persisted query sent by
 * its hash alone has no text to preflight). Over a limit → 400, code OPERATION_LIMIT_EXCEEDED, a message naming
 * the limit and the allowed value.
 *
 * Depth, aliases and directives are graphql-armor's rules, with fragments expanded and introspection counted
 * like any other field, except that the standard introspection query (isStandardIntrospection) is exempt from depth. Tokens are counted with graphql-js's lexer. Root fields, list sizes and the cost are ours: armor
 * has no root-field rule, and its cost multiplies only by literal `first` arguments (not variables, not schema
 * defaults), so it cannot see the fan-out of `School.students` asked without arguments.
 *
 * Cost is an upper bound on the values in the response: a field costs 1 plus its children, and a list field
 * multiplies that by its `first` (argument, variable or schema default) or, for `_entities`, by its number of
 * representations. Every list of the graph has a `first` (test/abuse/operation-limits.test.ts checks it), and no
 * `first` may exceed `maxListSize` (armor has no such rule; each resolver's own, lower cap answers BAD_USER_INPUT).
 * Root fields and cost expand each fragment once (memoised; a fragment cycle adds nothing), so no document
 * makes them loop or take exponential time; armor's rules memoise fragments the same way.
 */
import { ApolloArmor } from '@escape.tech/graphql-armor';
import type { ApolloServerPlugin, BaseContext, HTTPGraphQLRequest } from '@apollo/server';
import { LRUCache } from 'lru-cache';
import {
  GraphQLError,
  Kind,
  Lexer,
  OperationTypeNode,
  Source,
  TokenKind,
  getArgumentValues,
  getIntrospectionQuery,
  getNamedType,
  getOperationAST,
  getVariableValues,
  isInterfaceType,
  isObjectType,
  parse,
  print,
  validate,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLField,
  type GraphQLNamedType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValidationRule,
} from 'graphql';
import type { OperationLimits } from '../config/config.ts';
import { HttpError, OPERATION_LIMIT_EXCEEDED } from './server.ts';

/**
 * The query planner adds `__typename` and key fields at every entity boundary and wraps entity fetches in
 * `_entities(representations: …) { ... on T }`, so a subgraph allows this much more than the gateway in tokens
 * and cost (depth, aliases, root fields and directives never grow in a plan).
 */
const SUBGRAPH_HEADROOM = 2;

export function subgraphLimits(limits: OperationLimits): OperationLimits {
  return { ...limits, maxTokens: limits.maxTokens * SUBGRAPH_HEADROOM, maxCost: limits.maxCost * SUBGRAPH_HEADROOM };
}

/** Longer query texts are parsed every time rather than remembered by the subgraph's preflight. */
const MAX_REMEMBERED_QUERY_LENGTH = 20_000;

type Variables = Record<string, unknown>;

export interface OperationLimiter {
  /** Why the operation is refused, or undefined when it is within every limit (tokens excepted: see `tokenRefusal`). */
  refusal(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode | null | undefined,
    variables: Variables | undefined,
  ): string | undefined;
  /** As `refusal`, with the operation's estimated cost when it is within the limits. */
  check(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode | null | undefined,
    variables: Variables | undefined,
  ): { refusal: string } | { cost: number };
  /** Why the query text is refused for its number of tokens, or undefined. */
  tokenRefusal(source: string): string | undefined;
  /**
   * For the gateway: the same checks (tokens excepted) as an Apollo plugin, once the operation is resolved, for
   * the requests `preflight` could not check (`checked` tells which it did); `withinLimits` is then given the cost.
   */
  plugin<T extends BaseContext>(
    checked: (context: T) => boolean,
    withinLimits?: (context: T, cost: number) => Promise<void>,
  ): ApolloServerPlugin<T>;
  /**
   * Before Apollo: throws an HttpError when the request's operation is over a limit. `strict` (a subgraph) also
   * refuses anything but one operation POSTed as a JSON object with its text; otherwise (the gateway) a request
   * without text — a batch, which Apollo refuses, or a persisted-query hash — is left to Apollo and the plugin.
   * Returns the checked operation's estimated cost, or undefined when it checked none (the plugin must).
   */
  preflight(request: HTTPGraphQLRequest, schema: GraphQLSchema, strict: boolean): number | undefined;
}

export function createOperationLimits(limits: OperationLimits): OperationLimiter {
  // Armor's rules report through onReject; validate() is synchronous, so one list collects per call.
  let rejected: string[] = [];
  const onReject = [(_context: unknown, error: GraphQLError) => void rejected.push(error.message.replace(/^Syntax Error: /, ''))];
  const common = { propagateOnRejection: false, exposeLimits: true, onReject };
  const armor = (maxDepth: { enabled: false } | { n: number }): ValidationRule[] =>
    new ApolloArmor({
      maxDepth: 'n' in maxDepth ? { ...common, ...maxDepth, flattenFragments: true, ignoreIntrospection: false } : maxDepth,
      maxAliases: { ...common, n: limits.maxAliases, allowList: [] },
      maxDirectives: { ...common, n: limits.maxDirectives },
      costLimit: { enabled: false },
      maxTokens: { enabled: false },
      blockFieldSuggestion: { enabled: false },
    }).protect().validationRules;
  const armorRules = armor({ n: limits.maxDepth });
  // The same rules without depth, for the standard introspection query alone (see isStandardIntrospection).
  const armorRulesWithoutDepth = armor({ enabled: false });

  // Depth, aliases, directives and root fields depend on the document alone: once per parsed document.
  const staticRefusals = new WeakMap<DocumentNode, string | null>();
  const staticRefusal = (schema: GraphQLSchema, document: DocumentNode): string | undefined => {
    let refusal = staticRefusals.get(document);
    if (refusal === undefined) {
      rejected = [];
      validate(schema, document, isStandardIntrospection(document) ? armorRulesWithoutDepth : armorRules);
      refusal = rejected[0] ?? rootFieldRefusal(document, limits.maxRootFields) ?? null;
      staticRefusals.set(document, refusal);
    }
    return refusal ?? undefined;
  };

  const limiter: OperationLimiter = {
    refusal(schema, document, operation, variables) {
      const checked = limiter.check(schema, document, operation, variables);
      return 'refusal' in checked ? checked.refusal : undefined;
    },

    check(schema, document, operation, variables) {
      const refusal = staticRefusal(schema, document);
      if (refusal) return { refusal };
      if (!operation) return { cost: 0 };
      let largest: { field: string; first: number } | undefined;
      const cost = estimateCost(schema, document, operation, variables, (field, first) => {
        if (!largest || first > largest.first) largest = { field, first };
      });
      // Before the cost, which a large `first` also inflates: this message says what to change.
      if (largest && largest.first > limits.maxListSize)
        return { refusal: `List size limit of ${limits.maxListSize} exceeded, found ${largest.first} (first of ${largest.field}).` };
      return cost > limits.maxCost ? { refusal: `Query cost limit of ${limits.maxCost} exceeded, found ${cost}.` } : { cost };
    },

    tokenRefusal(source) {
      return countTokens(source, limits.maxTokens) > limits.maxTokens ? `Token limit of ${limits.maxTokens} exceeded.` : undefined;
    },

    plugin<T extends BaseContext>(
      checked: (context: T) => boolean,
      withinLimits?: (context: T, cost: number) => Promise<void>,
    ): ApolloServerPlugin<T> {
      return {
        async requestDidStart() {
          return {
            // After validation (fragment cycles and unknown fields are refused by then), before the query plan.
            async didResolveOperation({ schema, document, operation, request, contextValue }) {
              if (checked(contextValue)) return;
              const result = limiter.check(schema, document, operation, request.variables);
              if ('refusal' in result) throw limitError(result.refusal);
              await withinLimits?.(contextValue, result.cost);
            },
          };
        },
      };
    },

    preflight(request, schema, strict) {
      const operation = operationOf(request);
      if (!operation) {
        if (strict) throw new HttpError(400, 'BAD_REQUEST', 'A subgraph accepts one operation, POSTed as a JSON object with a query');
        return undefined;
      }
      const document = parseWithinLimits(operation.query);
      const resolved = getOperationAST(document, operation.operationName);
      // The gateway's planner would throw a plain error for it (a 500); it is the caller's mistake.
      if (!resolved) throw unresolvedOperation(operation.operationName);
      const result = limiter.check(schema, document, resolved, operation.variables);
      if ('refusal' in result) throw new HttpError(400, OPERATION_LIMIT_EXCEEDED, result.refusal);
      return result.cost;
    },
  };

  // Clients (and the gateway, to a subgraph) send the same few texts again and again: remember their documents.
  const parsed = new LRUCache<string, DocumentNode>({ max: 500 });
  function parseWithinLimits(query: string): DocumentNode {
    const known = parsed.get(query);
    if (known) return known;
    const tokens = limiter.tokenRefusal(query);
    if (tokens) throw new HttpError(400, OPERATION_LIMIT_EXCEEDED, tokens);
    let document: DocumentNode;
    try {
      document = parse(query, { noLocation: true });
    } catch (error) {
      // graphql-js's syntax errors name a position and what was expected, nothing else.
      throw new HttpError(400, 'GRAPHQL_PARSE_FAILED', error instanceof GraphQLError ? error.message : 'Syntax Error');
    }
    if (query.length <= MAX_REMEMBERED_QUERY_LENGTH) parsed.set(query, document);
    return document;
  }

  return limiter;
}

/** The option switches of graphql-js's getIntrospectionQuery; each combination is one standard introspection query. */
const INTROSPECTION_OPTIONS = [
  'descriptions',
  'specifiedByUrl',
  'directiveIsRepeatable',
  'schemaDescription',
  'inputValueDeprecation',
  'oneOf',
];
const INTROSPECTION_NAME = 'IntrospectionQuery';

let standardIntrospections: Set<string> | undefined;
/** Every standard introspection document, printed (built once, on the first document that selects `__schema`). */
function standardIntrospectionTexts(): Set<string> {
  if (!standardIntrospections) {
    standardIntrospections = new Set();
    for (let mask = 0; mask < 1 << INTROSPECTION_OPTIONS.length; mask++) {
      const options = Object.fromEntries(INTROSPECTION_OPTIONS.map((name, bit) => [name, (mask & (1 << bit)) !== 0]));
      standardIntrospections.add(print(parse(getIntrospectionQuery(options))));
    }
  }
  return standardIntrospections;
}

/**
 * True for exactly the introspection query graphql-js's getIntrospectionQuery builds (any combination of its
 * options, any operation name), the one GraphiQL and schema tools send: 13 levels deep, through `ofType`
 * chains that grow linearly, so it is exempt from the depth limit alone. Any other document selecting
 * `__schema` is counted like every operation.
 */
export function isStandardIntrospection(document: DocumentNode): boolean {
  const operations = document.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
  if (operations.length !== 1 || operations[0]!.operation !== OperationTypeNode.QUERY) return false;
  const [operation] = operations as [OperationDefinitionNode];
  if (!operation.selectionSet.selections.some((s) => s.kind === Kind.FIELD && s.name.value === '__schema')) return false;
  const named: DocumentNode = {
    ...document,
    definitions: document.definitions.map((d) =>
      d === operation ? { ...operation, name: { kind: Kind.NAME, value: INTROSPECTION_NAME } } : d,
    ),
  };
  return standardIntrospectionTexts().has(print(named));
}

const unresolvedOperation = (name: string | undefined) =>
  new HttpError(
    400,
    'OPERATION_RESOLUTION_FAILURE',
    name === undefined ? 'Must provide operation name if query contains multiple operations.' : `Unknown operation named "${name}".`,
  );

const limitError = (message: string) =>
  new GraphQLError(message, { extensions: { code: OPERATION_LIMIT_EXCEEDED, http: { status: 400 } } });

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** The one operation a request carries as text: a POSTed JSON object, or GET parameters; undefined otherwise. */
function operationOf(request: HTTPGraphQLRequest): { query: string; operationName?: string; variables?: Variables } | undefined {
  let fields: Record<string, unknown>;
  if (request.method === 'POST' && isRecord(request.body)) fields = request.body;
  else if (request.method === 'GET') {
    const search = new URLSearchParams(request.search);
    let variables: unknown;
    try {
      variables = JSON.parse(search.get('variables') ?? 'null');
    } catch {
      variables = undefined; // Apollo refuses it
    }
    fields = { query: search.get('query'), operationName: search.get('operationName'), variables };
  } else return undefined;
  if (typeof fields.query !== 'string') return undefined;
  return {
    query: fields.query,
    operationName: typeof fields.operationName === 'string' ? fields.operationName : undefined,
    variables: isRecord(fields.variables) ? fields.variables : undefined,
  };
}

/** Tokens of a query text, counting stops past `stopAfter`; comments are not tokens (as for graphql-js's own maxTokens). */
export function countTokens(source: string, stopAfter: number): number {
  const lexer = new Lexer(new Source(source));
  let count = 0;
  try {
    while (count <= stopAfter && lexer.advance().kind !== TokenKind.EOF) count++;
  } catch {
    // A lexical error: the parser reports it.
  }
  return count;
}

function fragmentsOf(document: DocumentNode): Map<string, FragmentDefinitionNode> {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions)
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  return fragments;
}

/**
 * Walks a selection set with every fragment spread expanded, each fragment's value computed once (a fragment's
 * value does not depend on where it is spread); a fragment met again while being computed counts 0.
 */
function walker(document: DocumentNode, value: (set: SelectionSetNode, type: string | undefined, walk: Walk) => number): Walk {
  const fragments = fragmentsOf(document);
  const memo = new Map<string, number>();
  const walk: Walk = {
    selectionSet: (set, type) => value(set, type, walk),
    fragment(name) {
      const known = memo.get(name);
      if (known !== undefined) return known;
      const fragment = fragments.get(name);
      if (!fragment) return 0;
      memo.set(name, 0);
      const result = value(fragment.selectionSet, fragment.typeCondition.name.value, walk);
      memo.set(name, result);
      return result;
    },
  };
  return walk;
}

interface Walk {
  selectionSet(set: SelectionSetNode, type: string | undefined): number;
  fragment(name: string): number;
}

/** Fields selected at the root of each operation (fragments expanded; `__typename` is free). */
function rootFieldRefusal(document: DocumentNode, max: number): string | undefined {
  const walk = walker(document, (set, _type, w) => {
    let count = 0;
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) count += selection.name.value === '__typename' ? 0 : 1;
      else if (selection.kind === Kind.INLINE_FRAGMENT) count += w.selectionSet(selection.selectionSet, undefined);
      else count += w.fragment(selection.name.value);
    }
    return count;
  });
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.OPERATION_DEFINITION) continue;
    const count = walk.selectionSet(definition.selectionSet, undefined);
    if (count > max) return `Root fields limit of ${max} exceeded, found ${count}.`;
  }
  return undefined;
}

/** The cost of one operation (see the module comment) for these variables. */
export function estimateCost(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  rawVariables: Variables | undefined,
  /** Told every list field's `first` (argument, variable or default), for the list-size limit. */
  onList?: (field: string, first: number) => void,
): number {
  const coercion = getVariableValues(schema, operation.variableDefinitions ?? [], rawVariables ?? {}, { maxErrors: 1 });
  // Variables that do not coerce make execution refuse the operation before any resolver runs.
  const variables = 'coerced' in coercion && coercion.coerced ? coercion.coerced : {};
  const typeNamed = (name: string | undefined): GraphQLNamedType | undefined =>
    name === undefined ? undefined : (schema.getType(name) ?? undefined);
  const walk = walker(document, (set, typeName, w) => {
    const parent = typeNamed(typeName);
    let total = 0;
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) {
        if (selection.name.value === '__typename') continue;
        const field = isObjectType(parent) || isInterfaceType(parent) ? parent.getFields()[selection.name.value] : undefined;
        const children = selection.selectionSet
          ? w.selectionSet(selection.selectionSet, field ? getNamedType(field.type).name : undefined)
          : 0;
        total += listSize(field, selection, variables, onList) * (1 + children);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        total += w.selectionSet(selection.selectionSet, selection.typeCondition?.name.value ?? typeName);
      } else {
        total += w.fragment(selection.name.value);
      }
    }
    return total;
  });
  return walk.selectionSet(operation.selectionSet, schema.getRootType(operation.operation)?.name);
}

/** How many items a field stands for: its `first`, or its number of `_entities` representations; 1 otherwise. */
function listSize(
  field: GraphQLField<unknown, unknown> | undefined,
  node: FieldNode,
  variables: Variables,
  onList?: (field: string, first: number) => void,
): number {
  const sizing = field?.args.find((arg) => arg.name === 'first' || arg.name === 'representations');
  if (!field || !sizing) return 1;
  let value: unknown;
  try {
    value = getArgumentValues(field, node, variables)[sizing.name];
  } catch {
    return 1; // an argument that does not coerce fails execution before this field resolves
  }
  if (sizing.name === 'representations') return Array.isArray(value) ? value.length : 1;
  if (typeof value !== 'number' || !Number.isFinite(value)) return 1;
  onList?.(field.name, value);
  return Math.max(0, value);
}
