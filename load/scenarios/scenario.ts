/**
 * What a load scenario is, shared word for word by the Node runner and the k6 scripts: this module uses
 * neither Node nor k6 APIs. A scenario file (`load/scenarios/*.json`) names GraphQL operations with
 * weights and variables, the district mix, the arrival rate, the duration and the thresholds; a tokens file
 * (`npm run load:tokens`) names the target, the districts, a token per district and sample ids to fill
 * variables with.
 */

/** One GraphQL operation. In `variables`, a string "$key" is replaced per request (see resolveVariables). */
export interface Operation {
  name: string;
  weight: number;
  query: string;
  variables?: Record<string, unknown>;
}

export type DistrictMix =
  | { kind: 'uniform' }
  /** Each district in proportion to its number of students: the big districts send most requests. */
  | { kind: 'skewed' }
  /** One district (the largest, or a slug) at `factor` times the rate of every other district. */
  | { kind: 'hot'; district: 'largest' | string; factor: number };

export interface Thresholds {
  /** Overall latency percentiles, milliseconds. */
  p95Ms: number;
  p99Ms?: number;
  /** Every district's own p95, milliseconds. */
  districtP95Ms?: number;
  /** Failed requests (HTTP error, GraphQL error, timeout) over all requests, 0..1. */
  errorRate: number;
}

export interface Scenario {
  name: string;
  description?: string;
  operations: Operation[];
  mix: DistrictMix;
  /** Use only the first N districts of the tokens file (largest first); all when absent. */
  districts?: number;
  /** Arrivals per second, whatever the server does (open model). */
  rate: number;
  durationSeconds: number;
  /** Requests still running at the end get this long before they count as timed out. */
  timeoutMs?: number;
  thresholds: Thresholds;
}

export interface DistrictTarget {
  tenantId: string;
  slug: string;
  students: number;
  token: string;
  /** Ids of this district's rows, by variable name (studentId, schoolId, teacherId, sectionId). */
  samples: Record<string, string[]>;
}

export interface TokensFile {
  target: string;
  issuedAt: string;
  expiresAt: string;
  districts: DistrictTarget[];
}

const fail = (message: string): never => {
  throw new Error(message);
};
const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const positive = (value: unknown, field: string): number =>
  typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : fail(`${field} must be a positive number`);

/** Checks a parsed scenario file and returns it typed; the error names the first bad field. */
export function parseScenario(raw: unknown, source = 'scenario'): Scenario {
  if (!isObject(raw)) return fail(`${source}: must be a JSON object`);
  const at = (field: string) => `${source}: ${field}`;
  if (typeof raw.name !== 'string' || !raw.name) fail(at('name must be a non-empty string'));
  if (!Array.isArray(raw.operations) || raw.operations.length === 0) fail(at('operations must be a non-empty array'));
  (raw.operations as unknown[]).forEach((op, i) => {
    if (!isObject(op)) return fail(at(`operations[${i}] must be an object`));
    if (typeof op.name !== 'string' || typeof op.query !== 'string') fail(at(`operations[${i}] needs a name and a query`));
    positive(op.weight, at(`operations[${i}].weight`));
    if (op.variables !== undefined && !isObject(op.variables)) fail(at(`operations[${i}].variables must be an object`));
  });
  const mix = raw.mix;
  if (!isObject(mix) || !['uniform', 'skewed', 'hot'].includes(mix.kind as string)) fail(at('mix.kind must be uniform, skewed or hot'));
  if ((mix as { kind: string }).kind === 'hot') {
    const hot = mix as { district?: unknown; factor?: unknown };
    if (typeof hot.district !== 'string') fail(at('mix.district must be "largest" or a district slug'));
    positive(hot.factor, at('mix.factor'));
  }
  if (raw.districts !== undefined && (!Number.isInteger(raw.districts) || (raw.districts as number) < 1))
    fail(at('districts must be a positive integer'));
  positive(raw.rate, at('rate'));
  positive(raw.durationSeconds, at('durationSeconds'));
  if (raw.timeoutMs !== undefined) positive(raw.timeoutMs, at('timeoutMs'));
  const thresholds = raw.thresholds;
  if (!isObject(thresholds)) return fail(at('thresholds must be an object'));
  positive(thresholds.p95Ms, at('thresholds.p95Ms'));
  if (thresholds.p99Ms !== undefined) positive(thresholds.p99Ms, at('thresholds.p99Ms'));
  if (thresholds.districtP95Ms !== undefined) positive(thresholds.districtP95Ms, at('thresholds.districtP95Ms'));
  if (typeof thresholds.errorRate !== 'number' || thresholds.errorRate < 0 || thresholds.errorRate > 1)
    fail(at('thresholds.errorRate must be from 0 to 1'));
  return raw as unknown as Scenario;
}

export function parseTokens(raw: unknown, source = 'tokens file'): TokensFile {
  if (!isObject(raw) || typeof raw.target !== 'string' || !Array.isArray(raw.districts) || raw.districts.length === 0) {
    return fail(`${source}: needs a target and at least one district (write it with npm run load:tokens)`);
  }
  return raw as unknown as TokensFile;
}

/** The districts a scenario uses, each with its share of the arrivals (shares add up to 1). */
export function districtShares(scenario: Scenario, tokens: TokensFile): { district: DistrictTarget; share: number }[] {
  const districts = scenario.districts ? tokens.districts.slice(0, scenario.districts) : tokens.districts;
  const mix = scenario.mix;
  let weights: number[];
  if (mix.kind === 'uniform') weights = districts.map(() => 1);
  else if (mix.kind === 'skewed') weights = districts.map((d) => Math.max(1, d.students));
  else {
    const hot =
      mix.district === 'largest'
        ? districts.reduce((best, d, i) => (d.students > districts[best]!.students ? i : best), 0)
        : districts.findIndex((d) => d.slug === mix.district);
    if (hot < 0) fail(`mix.district "${mix.district}" is not in the tokens file`);
    weights = districts.map((_, i) => (i === hot ? mix.factor : 1));
  }
  const total = weights.reduce((sum, w) => sum + w, 0);
  return districts.map((district, i) => ({ district, share: weights[i]! / total }));
}

/** Picks from weighted items with a uniform random number in [0, 1). */
export function weightedPicker<T>(items: T[], weightOf: (item: T) => number): (random: number) => T {
  const cumulative: number[] = [];
  let total = 0;
  for (const item of items) cumulative.push((total += weightOf(item)));
  return (random) => {
    const target = random * total;
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid]! > target) hi = mid;
      else lo = mid + 1;
    }
    return items[lo]!;
  };
}

let uniqueCounter = 0;

/**
 * Fills "$key" strings: `$grade` is a grade from -1 to 12, `$unique` a fresh text, `$<sample>` one of the
 * district's sample ids (studentId, schoolId, teacherId, sectionId), `$<sample>*N` N distinct ones.
 */
export function resolveVariables(value: unknown, district: DistrictTarget, random: () => number): unknown {
  if (typeof value === 'string' && value.startsWith('$')) {
    const [key, countText] = value.slice(1).split('*');
    if (key === 'grade') return Math.floor(random() * 14) - 1;
    if (key === 'unique') return `load ${Date.now().toString(36)}-${(uniqueCounter++).toString(36)}`;
    const pool = district.samples[key!] ?? fail(`variable ${value}: the tokens file has no "${key}" samples for ${district.slug}`);
    if (pool.length === 0) fail(`variable ${value}: ${district.slug} has no ${key} samples`);
    if (countText === undefined) return pool[Math.floor(random() * pool.length)];
    const count = Math.min(Number(countText), pool.length);
    const start = Math.floor(random() * pool.length);
    return Array.from({ length: count }, (_, i) => pool[(start + i) % pool.length]);
  }
  if (Array.isArray(value)) return value.map((v) => resolveVariables(v, district, random));
  if (isObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveVariables(v, district, random)]));
  return value;
}

export interface PlannedRequest {
  operation: string;
  district: DistrictTarget;
  body: string;
}

/** Everything a runner needs to draw the next request: which district, which operation, which body. */
export function requestPlanner(scenario: Scenario, tokens: TokensFile, random: () => number = Math.random): () => PlannedRequest {
  const pickDistrict = weightedPicker(districtShares(scenario, tokens), (d) => d.share);
  const pickOperation = weightedPicker(scenario.operations, (op) => op.weight);
  return () => {
    const { district } = pickDistrict(random());
    const operation = pickOperation(random());
    const variables = resolveVariables(operation.variables ?? {}, district, random);
    return { operation: operation.name, district, body: JSON.stringify({ query: operation.query, variables }) };
  };
}

/** A GraphQL response body's failure, if any: the first error code, or null when the body carries data and no errors. */
export function graphqlErrorCode(body: string): string | null {
  try {
    const parsed = JSON.parse(body) as { data?: unknown; errors?: { extensions?: { code?: unknown } }[] };
    if (parsed.errors?.length) {
      const code = parsed.errors[0]!.extensions?.code;
      return typeof code === 'string' ? code : 'GRAPHQL_ERROR';
    }
    return parsed.data ? null : 'NO_DATA';
  } catch {
    return 'INVALID_JSON';
  }
}
