import { readFileSync } from 'node:fs';
import { generate } from '@graphql-codegen/cli';
import { describe, expect, it } from 'vitest';
import config, { resolverTypesFile } from '../codegen.ts';
import exampleConfig, { EXAMPLE_GENERATED } from '../examples/web/codegen.ts';
import { PROJECT_ROOT, projectPath, readRegistry } from '../config/registry.ts';

describe('generated types', () => {
  it("every subgraph's committed generated/resolvers-types.ts equals a fresh generation from its SDL (run `npm run codegen`)", async () => {
    // generate() is typed `any` because of its watch mode; without it, it resolves to the files it would write.
    const outputs = (await generate({ ...config, cwd: PROJECT_ROOT }, false)) as { filename: string; content: string }[];
    const expected = readRegistry().map(resolverTypesFile).sort();
    expect(outputs.map((output) => output.filename).sort()).toEqual(expected);
    for (const output of outputs) expect(readFileSync(projectPath(output.filename), 'utf8'), output.filename).toBe(output.content);
  });

  it("the example client's committed src/generated/ equals a fresh generation from the supergraph and its operations (run `npm run example:codegen`)", async () => {
    const outputs = (await generate({ ...exampleConfig, cwd: PROJECT_ROOT }, false)) as { filename: string; content: string }[];
    expect(outputs.map((output) => output.filename).sort()).toEqual(
      ['gql.ts', 'graphql.ts', 'index.ts'].map((file) => projectPath(EXAMPLE_GENERATED + file)),
    );
    for (const output of outputs) expect(readFileSync(output.filename, 'utf8'), output.filename).toBe(output.content);
  });
});
