/**
 * Cross-service references: ids a mutation takes that name another service's entities (students' `schoolId`
 * names a School of districts; staff's `studentIds` name Students). No foreign key can hold them (another
 * database), so before anything is committed the subgraph asks the owning service, as the caller's district,
 * which of them exist — one `_entities` request per referenced service per request, with the context the
 * gateway signed for that service (audience = it, same district and request, single use). Resolvers then
 * answer BAD_USER_INPUT naming the field and the ids that are not the district's; the transaction rolls back.
 */
import {
  GraphQLIncludeDirective,
  Kind,
  OperationTypeNode,
  GraphQLSkipDirective,
  getArgumentValues,
  getDirectiveValues,
  getVariableValues,
  type DocumentNode,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type FieldNode,
} from 'graphql';
import { Agent, request } from 'undici';
import { badInput } from '../http/errors.ts';
import { TENANT_CONTEXT_HEADER, TENANT_ID_HEADER, isUuid, type TenantContext } from '../tenancy/tenant-context.ts';

/** One argument of a mutation that names entities of another service. */
export interface ReferenceDeclaration {
  /** The owning service (its registry name), listed in this subgraph's registry `references`. */
  service: string;
  /** The entity type, resolvable by the owning service's `_entities`. */
  type: string;
  /** The input field errors name, e.g. `schoolId`. */
  field: string;
  /** The ids the mutation's arguments hold, as given (non-UUIDs are skipped: the resolver refuses them). */
  ids(args: Record<string, unknown>): unknown[];
}

/** By Mutation field name: the references each takes. */
export type ReferenceDeclarations = Record<string, ReferenceDeclaration[]>;

/** More ids than this in one request are refused before any lookup (a section holds at most 200 students). */
export const MAX_REFERENCED_IDS = 1000;
const LOOKUP_TIMEOUT_MS = 5000;
const ENTITIES = 'query ReferenceLookup($representations: [_Any!]!) { _entities(representations: $representations) { __typename } }';

const keyOf = (type: string, id: string) => `${type}:${id.toLowerCase()}`;

export interface ReferenceLookupOptions {
  /** The owning service's GraphQL URL. */
  url: string;
  /** The context the gateway signed for that service (already checked to be this request's). */
  context: string;
  tenant: TenantContext;
  representations: { __typename: string; id: string }[];
}

/** The service that owns referenced ids did not answer, or answered 503 (its database): the mutation cannot be checked now. */
export class ReferenceServiceUnavailableError extends Error {}

/** The HTTP client for reference lookups: undici over one keep-alive agent per subgraph process. */
export function createReferenceClient(timeoutMs = LOOKUP_TIMEOUT_MS) {
  const agent = new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 60_000 });
  return {
    /** Which representations the owning service resolves for the district (true) and which not (false). */
    async lookup({ url, context, tenant, representations }: ReferenceLookupOptions): Promise<boolean[]> {
      let response;
      try {
        response = await request(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', [TENANT_CONTEXT_HEADER]: context, [TENANT_ID_HEADER]: tenant.tenantId },
          body: JSON.stringify({ query: ENTITIES, variables: { representations } }),
          dispatcher: agent,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
        });
      } catch (error) {
        throw new ReferenceServiceUnavailableError(
          `reference lookup at ${url} failed: ${(error as { code?: string }).code ?? 'no answer'}`,
        );
      }
      const text = await response.body.text();
      if (response.statusCode === 503) throw new ReferenceServiceUnavailableError(`reference lookup at ${url} answered HTTP 503`);
      if (response.statusCode !== 200) throw new Error(`reference lookup at ${url} answered HTTP ${response.statusCode}`);
      const body = JSON.parse(text) as { data?: { _entities?: unknown[] }; errors?: unknown[] };
      const entities = body.data?._entities;
      if (body.errors?.length || !Array.isArray(entities) || entities.length !== representations.length) {
        throw new Error(`reference lookup at ${url} failed`);
      }
      return entities.map((entity) => entity !== null);
    },
    close: () => agent.close(),
  };
}
export type ReferenceClient = ReturnType<typeof createReferenceClient>;

/** What a subgraph process shares across requests for its references. */
export interface ReferenceSetup {
  declarations: ReferenceDeclarations;
  client: ReferenceClient;
  serviceUrl(service: string): string;
  /** Checks a forwarded context (see tenant-context.ts createForwardedContextVerifier) and returns it. */
  verifyForwarded(token: string | undefined, audience: string, own: TenantContext): Promise<string>;
}

/** The root fields an operation selects (through fragments), minus those @skip/@include leave out. */
function rootFields(selectionSet: SelectionSetNode, document: DocumentNode, variables: Record<string, unknown>): FieldNode[] {
  const fields: FieldNode[] = [];
  for (const selection of selectionSet.selections) {
    if (getDirectiveValues(GraphQLSkipDirective, selection, variables)?.if === true) continue;
    if (getDirectiveValues(GraphQLIncludeDirective, selection, variables)?.if === false) continue;
    if (selection.kind === Kind.FIELD) fields.push(selection);
    else if (selection.kind === Kind.INLINE_FRAGMENT) fields.push(...rootFields(selection.selectionSet, document, variables));
    else {
      const fragment = document.definitions.find((d) => d.kind === Kind.FRAGMENT_DEFINITION && d.name.value === selection.name.value);
      if (fragment?.kind === Kind.FRAGMENT_DEFINITION) fields.push(...rootFields(fragment.selectionSet, document, variables));
    }
  }
  return fields;
}

/** One request's reference checks: looked up once before execution, asserted by the resolvers. */
export class ReferenceChecks {
  readonly #setup: ReferenceSetup | undefined;
  readonly #tenant: TenantContext;
  readonly #forwarded: (service: string) => string | undefined;
  /** By service: every `type:id` asked, and those that exist in the district. */
  readonly #asked = new Map<string, Set<string>>();
  readonly #found = new Map<string, Set<string>>();
  /** Set once looked up: a retried tenant transaction reuses the answers (each forwarded context is good for one use). */
  #lookedUp = false;

  constructor(setup: ReferenceSetup | undefined, tenant: TenantContext, forwarded: (service: string) => string | undefined) {
    this.#setup = setup;
    this.#tenant = tenant;
    this.#forwarded = forwarded;
  }

  /**
   * Looks up every referenced id of a mutation operation (all its root fields at once), one request per
   * owning service. Variables or arguments that do not coerce are left to execution to report.
   */
  async lookUp(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    rawVariables: Record<string, unknown> = {},
  ): Promise<void> {
    const setup = this.#setup;
    if (!setup || operation.operation !== OperationTypeNode.MUTATION || this.#lookedUp) return;
    const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], rawVariables);
    if (coerced.errors) return;
    const mutationType = schema.getMutationType();
    const wanted = new Map<string, Map<string, { __typename: string; id: string }>>();
    for (const node of rootFields(operation.selectionSet, document, coerced.coerced)) {
      const declarations = setup.declarations[node.name.value];
      const definition = mutationType?.getFields()[node.name.value];
      if (!declarations || !definition) continue;
      let args: Record<string, unknown>;
      try {
        args = getArgumentValues(definition, node, coerced.coerced);
      } catch {
        continue;
      }
      for (const declaration of declarations) {
        const byKey = wanted.get(declaration.service) ?? new Map<string, { __typename: string; id: string }>();
        wanted.set(declaration.service, byKey);
        for (const id of declaration.ids(args).filter(isUuid))
          byKey.set(keyOf(declaration.type, id), { __typename: declaration.type, id: id.toLowerCase() });
      }
    }
    const total = [...wanted.values()].reduce((sum, byKey) => sum + byKey.size, 0);
    if (total > MAX_REFERENCED_IDS) throw badInput(`at most ${MAX_REFERENCED_IDS} ids of other services may be referenced in one request`);
    await Promise.all(
      [...wanted].map(async ([service, byKey]) => {
        const representations = [...byKey.values()];
        const found = new Set<string>();
        if (representations.length) {
          const context = await setup.verifyForwarded(this.#forwarded(service), service, this.#tenant);
          const exists = await setup.client.lookup({ url: setup.serviceUrl(service), context, tenant: this.#tenant, representations });
          representations.forEach((r, i) => exists[i] && found.add(keyOf(r.__typename, r.id)));
        }
        this.#asked.set(service, new Set(byKey.keys()));
        this.#found.set(service, found);
      }),
    );
    this.#lookedUp = true;
  }

  /** Throws BAD_USER_INPUT naming the field and every id that names no entity of the caller's district. */
  assertExist(declaration: ReferenceDeclaration, ids: string[]): void {
    const asked = this.#asked.get(declaration.service);
    const found = this.#found.get(declaration.service)!;
    const unchecked = ids.filter((id) => !asked?.has(keyOf(declaration.type, id)));
    // A resolver asserting ids its declaration did not yield is a programming error, never the caller's.
    if (unchecked.length) throw new Error(`${declaration.field}: ids were not looked up before execution (check its ReferenceDeclaration)`);
    const missing = ids.filter((id) => !found.has(keyOf(declaration.type, id)));
    if (missing.length) throw badInput(`${declaration.field} names no ${declaration.type} of this district: ${missing.join(', ')}`);
  }
}
