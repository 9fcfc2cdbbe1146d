/**
 * operations/ (what `npm run schema:check` validates, and later the trusted documents) and the load
 * scenarios' operations must stay the same documents.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kind, parse, print, type OperationDefinitionNode } from 'graphql';
import { describe, expect, it } from 'vitest';
import { projectPath } from '../config/registry.ts';
import { parseScenario } from '../load/scenarios/scenario.ts';
import { OPERATIONS_MANIFEST_FILE } from '../config/config.ts';
import {
  DEFAULT_OPERATIONS,
  buildManifest,
  manifestStaleness,
  manifestText,
  readManifest,
  readOperationFiles,
  sha256Hex,
} from '../schema/operations-manifest.ts';

const operationsDir = projectPath('operations');
const scenariosDir = projectPath('load/scenarios');

const operationFiles = readdirSync(operationsDir)
  .filter((file) => file.endsWith('.graphql'))
  .sort();
const documentOf = (file: string) => parse(readFileSync(`${operationsDir}/${file}`, 'utf8'));

/** Every operation of every scenario, by scenario operation name; the same name must mean the same document. */
function scenarioOperations(): Map<string, { query: string; scenario: string }> {
  const operations = new Map<string, { query: string; scenario: string }>();
  for (const file of readdirSync(scenariosDir).filter((f) => f.endsWith('.json'))) {
    const scenario = parseScenario(JSON.parse(readFileSync(`${scenariosDir}/${file}`, 'utf8')), file);
    for (const operation of scenario.operations) {
      const known = operations.get(operation.name);
      if (known)
        expect(print(parse(operation.query)), `${file}: ${operation.name} differs from ${known.scenario}`).toBe(print(parse(known.query)));
      else operations.set(operation.name, { query: operation.query, scenario: file });
    }
  }
  return operations;
}

describe('operations/', () => {
  it('holds every load scenario operation as <name>.graphql with the same document', () => {
    const operations = scenarioOperations();
    expect(operations.size).toBeGreaterThan(0);
    for (const [name, { query, scenario }] of operations) {
      expect(operationFiles, `${scenario}: operation ${name} has no operations/${name}.graphql`).toContain(`${name}.graphql`);
      expect(print(documentOf(`${name}.graphql`)), `operations/${name}.graphql differs from ${scenario}`).toBe(print(parse(query)));
    }
  });

  it('holds exactly one named operation per file, names unique across the folder', () => {
    expect(operationFiles.length).toBeGreaterThan(0);
    const names = operationFiles.map((file) => {
      const operations = documentOf(file).definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
      expect(operations, file).toHaveLength(1);
      expect(operations[0]!.name?.value, `${file}: the operation needs a name`).toBeTruthy();
      return operations[0]!.name!.value;
    });
    expect(new Set(names).size, `repeated operation names: ${names.join(', ')}`).toBe(names.length);
  });
});

describe('the trusted-documents manifest', () => {
  it('is current: one entry per file, id = sha256 of the printed body, in the persisted-query manifest format', async () => {
    const files = await readOperationFiles(projectPath(DEFAULT_OPERATIONS));
    expect(await manifestStaleness(files)).toBeUndefined();
    const manifest = await readManifest(projectPath(OPERATIONS_MANIFEST_FILE));
    expect(manifest).toMatchObject({ format: 'apollo-persisted-query-manifest', version: 1 });
    expect(manifest.operations).toHaveLength(operationFiles.length);
    for (const operation of manifest.operations) {
      expect(Object.keys(operation).sort()).toEqual(['body', 'id', 'name', 'type']);
      expect(operation.id).toBe(sha256Hex(operation.body));
      expect(operation.body).toBe(print(parse(operation.body)));
    }
  });

  it('is reported stale when an operation changed and missing when absent (what fails schema:check)', async () => {
    const files = await readOperationFiles(projectPath(DEFAULT_OPERATIONS));
    const scratch = await mkdtemp(join(tmpdir(), 'k12-manifest-'));
    try {
      const path = join(scratch, 'manifest.json');
      expect(await manifestStaleness(files, path)).toMatch(/is missing: run npm run operations:manifest/);
      const changed = files.map((file, index) => (index === 0 ? { ...file, body: file.body.replace('}', ' __typename }') } : file));
      await writeFile(path, manifestText(buildManifest(changed)));
      expect(await manifestStaleness(files, path)).toMatch(/is not current: run npm run operations:manifest/);
      await writeFile(path, manifestText(buildManifest(files)));
      expect(await manifestStaleness(files, path)).toBeUndefined();
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });
});
