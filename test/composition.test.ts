import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { composeSupergraph } from '../schema/compose.ts';
import { SUPERGRAPH_PATH } from '../config/registry.ts';

describe('supergraph', () => {
  it('committed schema/supergraph.graphql equals a fresh composition of the subgraph SDL (run `npm run compose`)', () => {
    expect(readFileSync(SUPERGRAPH_PATH, 'utf8')).toBe(composeSupergraph());
  });
});
