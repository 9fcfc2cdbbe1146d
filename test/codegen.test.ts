import { readFileSync } from 'node:fs';
import { generate } from '@graphql-codegen/cli';
import { describe, expect, it } from 'vitest';
import config, { resolverTypesFile } from '../codegen.ts';
import { PROJECT_ROOT, projectPath, readRegistry } from '../config/registry.ts';

describe('resolver types', () => {
  it("every subgraph's committed generated/resolvers-types.ts equals a fresh generation from its SDL (run `npm run codegen`)", async () => {
    // generate() is typed `any` because of its watch mode; without it, it resolves to the files it would write.
    const outputs = (await generate({ ...config, cwd: PROJECT_ROOT }, false)) as { filename: string; content: string }[];
    const expected = readRegistry().map(resolverTypesFile).sort();
    expect(outputs.map((output) => output.filename).sort()).toEqual(expected);
    for (const output of outputs) expect(readFileSync(projectPath(output.filename), 'utf8'), output.filename).toBe(output.content);
  });
});
