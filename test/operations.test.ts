/**
 * operations/ (what `npm run schema:check` validates, and later the trusted documents) and the load
 * scenarios' operations must stay the same documents.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { Kind, parse, print, type OperationDefinitionNode } from 'graphql';
import { describe, expect, it } from 'vitest';
import { projectPath } from '../config/registry.ts';
import { parseScenario } from '../load/scenarios/scenario.ts';

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
