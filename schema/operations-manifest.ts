/**
 * The trusted documents: `npm run operations:manifest` writes every operation of operations/ into
 * operations/persisted-query-manifest.json, in the persisted-query manifest format of Apollo Client and Apollo's
 * tooling (`@apollo/generate-persisted-query-manifest`): `{ format, version: 1, operations: [{ id, name, type, body }] }`,
 * where `body` is the operation printed by graphql-js (one canonical text, whatever the file's layout) and `id` its
 * sha256 in hex — the hash a client sends as `extensions.persistedQuery.sha256Hash`. The gateway runs these
 * operations by hash, and with TRUSTED_DOCUMENTS=enforce nothing else (gateway/trusted-documents.ts);
 * `npm run schema:check` fails when the committed manifest is not what this command would write.
 */
import '../config/node-version.ts';
import { createHash } from 'node:crypto';
import { glob, readFile, writeFile } from 'node:fs/promises';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kind, parse, print, type OperationDefinitionNode } from 'graphql';
import { OPERATIONS_MANIFEST_FILE } from '../config/config.ts';
import { projectPath } from '../config/registry.ts';

/** The frontends' operations, one per file. */
export const DEFAULT_OPERATIONS = 'operations/**/*.graphql';

export interface OperationFile {
  /** Shown in messages: relative to the working directory. */
  file: string;
  body: string;
}

export async function readOperationFiles(pattern: string): Promise<OperationFile[]> {
  const files: string[] = [];
  for await (const file of glob(pattern)) files.push(file);
  files.sort();
  return Promise.all(files.map(async (file) => ({ file: relative(process.cwd(), file) || file, body: await readFile(file, 'utf8') })));
}

export const MANIFEST_FORMAT = 'apollo-persisted-query-manifest';

export interface ManifestOperation {
  /** sha256 of `body`, hex. */
  id: string;
  name: string;
  type: 'query' | 'mutation' | 'subscription';
  body: string;
}

export interface OperationsManifest {
  format: typeof MANIFEST_FORMAT;
  version: 1;
  operations: ManifestOperation[];
}

export const sha256Hex = (text: string) => createHash('sha256').update(text).digest('hex');

/** The manifest of these files: one entry per file (each holds one named operation, test/operations.test.ts), sorted by name. */
export function buildManifest(files: OperationFile[]): OperationsManifest {
  const operations = files.map(({ file, body: text }) => {
    const document = parse(text);
    const definitions = document.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
    const [operation] = definitions;
    if (definitions.length !== 1 || !operation?.name) throw new Error(`${file}: a trusted document holds exactly one named operation`);
    const body = print(document);
    return { id: sha256Hex(body), name: operation.name.value, type: operation.operation, body };
  });
  operations.sort((a, b) => a.name.localeCompare(b.name));
  return { format: MANIFEST_FORMAT, version: 1, operations };
}

/** The file's text: two-space JSON and a final newline (as Prettier leaves it). */
export const manifestText = (manifest: OperationsManifest) => `${JSON.stringify(manifest, null, 2)}\n`;

/** Reads and checks a manifest file; throws naming the file when it is not one. */
export async function readManifest(path: string): Promise<OperationsManifest> {
  const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new Error(`trusted documents: cannot read ${path} (${error.code ?? error.message}); run npm run operations:manifest`);
  });
  const manifest = JSON.parse(text) as Partial<OperationsManifest>;
  if (manifest.format !== MANIFEST_FORMAT || manifest.version !== 1 || !Array.isArray(manifest.operations))
    throw new Error(`trusted documents: ${path} is not an ${MANIFEST_FORMAT} of version 1`);
  for (const operation of manifest.operations) {
    if (typeof operation?.body !== 'string' || operation.id !== sha256Hex(operation.body))
      throw new Error(`trusted documents: ${path}: operation ${String(operation?.name)} has an id that is not the sha256 of its body`);
  }
  return manifest as OperationsManifest;
}

/** Why the committed manifest is not the one the operation files make, or undefined when it is current. */
export async function manifestStaleness(files: OperationFile[], path = projectPath(OPERATIONS_MANIFEST_FILE)): Promise<string | undefined> {
  const expected = manifestText(buildManifest(files));
  const committed = await readFile(path, 'utf8').catch(() => undefined);
  if (committed === undefined) return `${relative(process.cwd(), path)} is missing: run npm run operations:manifest`;
  return committed === expected ? undefined : `${relative(process.cwd(), path)} is not current: run npm run operations:manifest`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const files = await readOperationFiles(projectPath(DEFAULT_OPERATIONS));
  const manifest = buildManifest(files);
  const path = projectPath(OPERATIONS_MANIFEST_FILE);
  await writeFile(path, manifestText(manifest));
  console.log(`${relative(process.cwd(), path)}: ${manifest.operations.length} operation(s)`);
}
