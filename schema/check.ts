/**
 * `npm run schema:check`: before a subgraph deploys, tells whether its SDL breaks the graph or an operation
 * the frontends ship. Composes the registered subgraphs' current SDL (or a proposed file per subgraph with
 * `--subgraph name=file`), diffs the API schema of the result against the deployed supergraph's (the
 * committed schema/supergraph.graphql, or `--against <file|url|git:ref>`), classifies every change as breaking,
 * dangerous or safe (@graphql-inspector/core), and validates every operation of `--operations <glob>`
 * (default operations/**\/*.graphql) against the new API schema.
 *
 * Exit 0: no breaking change (or `--allow-breaking`) and every operation validates. Exit 1: a breaking change,
 * an operation that no longer validates (`--allow-breaking` does not excuse it: update the operation in the
 * same change), or subgraphs that do not compose. Exit 2: the check could not run (unreadable --against, no
 * operation matched).
 */
import '../config/node-version.ts';
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Supergraph } from '@apollo/federation-internals';
import { Command } from 'commander';
import { CriticalityLevel, diff, validate } from '@graphql-inspector/core';
import { Kind, Source, parse, type DocumentNode, type GraphQLError, type GraphQLSchema, type OperationDefinitionNode } from 'graphql';
import { PROJECT_ROOT, SUPERGRAPH_FILE, SUPERGRAPH_PATH, projectPath, readRegistry } from '../config/registry.ts';
import { OPERATIONS_MANIFEST_FILE } from '../config/config.ts';
import { composeSupergraph } from './compose.ts';
import { DEFAULT_OPERATIONS, manifestStaleness, readOperationFiles, type OperationFile } from './operations-manifest.ts';

export { DEFAULT_OPERATIONS, readOperationFiles, type OperationFile } from './operations-manifest.ts';
const FETCH_TIMEOUT_MS = 10_000;

export type ChangeLevel = 'breaking' | 'dangerous' | 'safe';

export interface SchemaChange {
  level: ChangeLevel;
  /** Schema coordinate, e.g. `Student.dateOfBirth` or `Query.students.after`. */
  path: string | null;
  message: string;
  type: string;
}

export interface OperationProblem {
  file: string;
  /** The operation's name (`null` for an anonymous operation or a problem outside any operation, e.g. syntax). */
  operation: string | null;
  message: string;
}

export interface SchemaCheckReport {
  against: string;
  /** Set when the subgraphs do not compose: nothing else was checked. */
  compositionErrors: string[];
  changes: SchemaChange[];
  operationFiles: number;
  operations: number;
  invalidOperations: OperationProblem[];
  /** Operations that still validate but use deprecated fields: reported, never failing. */
  deprecatedUsages: OperationProblem[];
  /** Set when the committed trusted-documents manifest is not what `npm run operations:manifest` writes from these operations. */
  manifestProblem?: string;
  allowBreaking: boolean;
  passed: boolean;
}

/** A check that could not run (exit 2), as opposed to one that found a problem (exit 1). */
export class SchemaCheckUnavailable extends Error {}

/** The schema clients see: the supergraph without its join__/link__ machinery and @inaccessible elements. */
export function apiSchemaOf(supergraphSdl: string): GraphQLSchema {
  return Supergraph.build(supergraphSdl).apiSchema().toGraphQLJSSchema();
}

/** The deployed supergraph's SDL: a file, an http(s) URL, or `git:<ref>` (the committed supergraph at that ref). */
export async function readDeployedSupergraph(against: string): Promise<string> {
  try {
    if (/^https?:\/\//.test(against)) {
      const response = await fetch(against, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      return await response.text();
    }
    if (against.startsWith('git:')) {
      return execFileSync('git', ['show', `${against.slice(4)}:${SUPERGRAPH_FILE}`], {
        cwd: PROJECT_ROOT,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    }
    return await readFile(against, 'utf8');
  } catch (error) {
    throw new SchemaCheckUnavailable(
      `cannot read the deployed supergraph ${against}: ${error instanceof Error ? error.message.trim() : String(error)}`,
    );
  }
}

export async function classifyChanges(deployed: GraphQLSchema, candidate: GraphQLSchema): Promise<SchemaChange[]> {
  const level: Record<CriticalityLevel, ChangeLevel> = {
    [CriticalityLevel.Breaking]: 'breaking',
    [CriticalityLevel.Dangerous]: 'dangerous',
    [CriticalityLevel.NonBreaking]: 'safe',
  };
  return (await diff(deployed, candidate)).map((change) => ({
    level: level[change.criticality.level],
    path: change.path ?? null,
    message: change.message,
    type: String(change.type),
  }));
}

function offsetOf(body: string, line: number, column: number): number {
  let offset = 0;
  for (let current = 1; current < line; current++) offset = body.indexOf('\n', offset) + 1;
  return offset + column - 1;
}

/** The operation a validation error falls in, by its first location. */
function operationAt(document: DocumentNode, body: string, error: GraphQLError): string | null {
  const location = error.locations?.[0];
  if (!location) return null;
  const offset = offsetOf(body, location.line, location.column);
  const operation = document.definitions.find(
    (definition): definition is OperationDefinitionNode =>
      definition.kind === Kind.OPERATION_DEFINITION && !!definition.loc && definition.loc.start <= offset && offset < definition.loc.end,
  );
  return operation?.name?.value ?? null;
}

/** Validates every operation against the schema; fragments may live in other files of the set. */
export function validateOperations(schema: GraphQLSchema, files: OperationFile[]) {
  const invalid: OperationProblem[] = [];
  const deprecated: OperationProblem[] = [];
  const parsed: { file: OperationFile; document: DocumentNode }[] = [];
  for (const file of files) {
    try {
      parsed.push({ file, document: parse(new Source(file.body, file.file)) });
    } catch (error) {
      invalid.push({ file: file.file, operation: null, message: (error as GraphQLError).message });
    }
  }
  const byName = new Map(parsed.map((entry) => [entry.file.file, entry]));
  const results = validate(
    schema,
    parsed.map(({ file }) => new Source(file.body, file.file)),
    { strictDeprecated: false },
  );
  for (const result of results) {
    const entry = byName.get(result.source.name)!;
    const describe = (error: GraphQLError): OperationProblem => ({
      file: entry.file.file,
      operation: operationAt(entry.document, entry.file.body, error),
      message: error.message,
    });
    invalid.push(...result.errors.map(describe));
    deprecated.push(...result.deprecated.map(describe));
  }
  const operations = parsed.reduce(
    (count, { document }) => count + document.definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION).length,
    0,
  );
  return { operations, invalid, deprecated };
}

export interface SchemaCheckOptions {
  /** File, http(s) URL or git:<ref> of the deployed supergraph. */
  against: string;
  operations: OperationFile[];
  /** Proposed SDL files by subgraph name, instead of the registered ones. */
  subgraphFiles?: Record<string, string>;
  allowBreaking?: boolean;
  /** The committed manifest of these operations, checked to be current (the CLI's default operations only). */
  manifestPath?: string;
}

export async function checkSchema(options: SchemaCheckOptions): Promise<SchemaCheckReport> {
  const registered = new Set(readRegistry().map((entry) => entry.name));
  for (const name of Object.keys(options.subgraphFiles ?? {})) {
    if (!registered.has(name)) throw new SchemaCheckUnavailable(`--subgraph ${name}: not in the registry (${[...registered].join(', ')})`);
  }
  const proposedSdl: Record<string, string> = {};
  for (const [name, file] of Object.entries(options.subgraphFiles ?? {})) {
    try {
      proposedSdl[name] = await readFile(file, 'utf8');
    } catch (error) {
      throw new SchemaCheckUnavailable(`--subgraph ${name}: cannot read ${file}: ${(error as Error).message}`);
    }
  }
  if (options.operations.length === 0) throw new SchemaCheckUnavailable('no operation file matched: nothing would be validated');
  let deployed: GraphQLSchema;
  try {
    deployed = apiSchemaOf(await readDeployedSupergraph(options.against));
  } catch (error) {
    if (error instanceof SchemaCheckUnavailable) throw error;
    throw new SchemaCheckUnavailable(`${options.against} is not a valid supergraph: ${(error as Error).message}`);
  }
  const report: SchemaCheckReport = {
    against: options.against,
    compositionErrors: [],
    changes: [],
    operationFiles: options.operations.length,
    operations: 0,
    invalidOperations: [],
    deprecatedUsages: [],
    allowBreaking: options.allowBreaking ?? false,
    passed: false,
  };
  let candidate: GraphQLSchema;
  try {
    candidate = apiSchemaOf(composeSupergraph(proposedSdl));
  } catch (error) {
    report.compositionErrors = (error as Error).message.split('\n').filter((line) => line && line !== 'composition failed:');
    return report;
  }
  report.changes = await classifyChanges(deployed, candidate);
  const validation = validateOperations(candidate, options.operations);
  report.operations = validation.operations;
  report.invalidOperations = validation.invalid;
  report.deprecatedUsages = validation.deprecated;
  if (options.manifestPath) report.manifestProblem = await manifestStaleness(options.operations, options.manifestPath);
  report.passed =
    report.invalidOperations.length === 0 &&
    !report.manifestProblem &&
    (report.allowBreaking || !report.changes.some((c) => c.level === 'breaking'));
  return report;
}

const where = (problem: OperationProblem) => `${problem.file}${problem.operation ? ` (operation ${problem.operation})` : ''}`;

export function formatReport(report: SchemaCheckReport): string {
  const lines: string[] = [];
  if (report.compositionErrors.length) {
    lines.push('schema check failed: the subgraphs do not compose', ...report.compositionErrors.map((e) => `  ${e}`));
    return lines.join('\n');
  }
  const count = (level: ChangeLevel) => report.changes.filter((c) => c.level === level).length;
  lines.push(`against ${report.against}: ${count('breaking')} breaking, ${count('dangerous')} dangerous, ${count('safe')} safe change(s)`);
  const order: ChangeLevel[] = ['breaking', 'dangerous', 'safe'];
  for (const change of [...report.changes].sort((a, b) => order.indexOf(a.level) - order.indexOf(b.level))) {
    lines.push(`  ${change.level.toUpperCase().padEnd(9)} ${change.path ?? '(schema)'}: ${change.message}`);
  }
  lines.push(`operations: ${report.operations} in ${report.operationFiles} file(s), ${report.invalidOperations.length} error(s)`);
  for (const problem of report.invalidOperations) lines.push(`  INVALID   ${where(problem)}: ${problem.message}`);
  for (const problem of report.deprecatedUsages) lines.push(`  DEPRECATED ${where(problem)}: ${problem.message}`);
  if (report.manifestProblem) lines.push(`  MANIFEST  ${report.manifestProblem}`);
  const breaking = report.changes.filter((c) => c.level === 'breaking');
  const reasons: string[] = [];
  if (breaking.length && !report.allowBreaking)
    reasons.push(`breaking change(s) to ${breaking.map((c) => c.path ?? c.message).join(', ')} (--allow-breaking to accept)`);
  if (report.invalidOperations.length) {
    reasons.push(
      `operation(s) no longer valid: ${[...new Set(report.invalidOperations.map(where))].join(', ')} (update them in this change)`,
    );
  }
  if (report.manifestProblem) reasons.push('the trusted-documents manifest is not current');
  if (reasons.length) lines.push(`schema check failed: ${reasons.join('; ')}`);
  else lines.push(`schema check passed${breaking.length ? ` (${breaking.length} breaking change(s) accepted with --allow-breaking)` : ''}`);
  return lines.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const program = new Command()
    .name('schema:check')
    .description(
      "Compose the subgraphs, diff against the deployed supergraph and validate the frontends' operations; exit 1 on a breaking change or an invalid operation.",
    )
    .option('--against <file|url|git:ref>', `the deployed supergraph (default: ${SUPERGRAPH_FILE})`)
    .option('--operations <glob>', `the operations the frontends ship (default: ${DEFAULT_OPERATIONS})`)
    .option('--subgraph <name=file...>', "check a proposed SDL file instead of a registered subgraph's", [])
    .option('--allow-breaking', 'accept breaking schema changes deliberately (operations that no longer validate still fail)')
    .option('--json', 'print the report as JSON')
    .parse();
  const options = program.opts<{ against?: string; operations?: string; subgraph: string[]; allowBreaking?: boolean; json?: boolean }>();
  try {
    const subgraphFiles: Record<string, string> = {};
    for (const pair of options.subgraph) {
      const [name, file] = pair.split('=', 2);
      if (!name || !file) throw new SchemaCheckUnavailable(`--subgraph ${pair}: expected name=file`);
      subgraphFiles[name] = file;
    }
    const report = await checkSchema({
      // The defaults are the project's own files, wherever the command runs from.
      against: options.against ?? relative(process.cwd(), SUPERGRAPH_PATH),
      operations: await readOperationFiles(options.operations ?? projectPath(DEFAULT_OPERATIONS)),
      subgraphFiles,
      allowBreaking: options.allowBreaking,
      // The committed manifest is made from the project's own operations folder.
      manifestPath: options.operations === undefined ? projectPath(OPERATIONS_MANIFEST_FILE) : undefined,
    });
    console.log(options.json ? JSON.stringify(report, null, 2) : formatReport(report));
    process.exitCode = report.passed ? 0 : 1;
  } catch (error) {
    if (!(error instanceof SchemaCheckUnavailable)) throw error;
    console.error(`schema check could not run: ${error.message}`);
    process.exitCode = 2;
  }
}
