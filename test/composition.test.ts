import { readFileSync } from 'node:fs';
import { Supergraph } from '@apollo/federation-internals';
import { isEnumType, isInputObjectType, isInterfaceType, isObjectType, isSpecifiedScalarType } from 'graphql';
import { describe, expect, it } from 'vitest';
import { composeSupergraph } from '../schema/compose.ts';
import { SUPERGRAPH_PATH } from '../config/registry.ts';

describe('supergraph', () => {
  it('committed schema/supergraph.graphql equals a fresh composition of the subgraph SDL (run `npm run compose`)', () => {
    expect(readFileSync(SUPERGRAPH_PATH, 'utf8')).toBe(composeSupergraph());
  });

  it('the API schema clients introspect describes every type, field, argument, enum value and input field', () => {
    const api = Supergraph.build(readFileSync(SUPERGRAPH_PATH, 'utf8')).apiSchema().toGraphQLJSSchema();
    const described: string[] = [];
    const undescribed: string[] = [];
    const check = (path: string, description: string | null | undefined) => (description?.trim() ? described : undescribed).push(path);
    for (const type of Object.values(api.getTypeMap())) {
      if (type.name.startsWith('__') || isSpecifiedScalarType(type)) continue;
      check(type.name, type.description);
      if (isObjectType(type) || isInterfaceType(type)) {
        for (const field of Object.values(type.getFields())) {
          check(`${type.name}.${field.name}`, field.description);
          for (const arg of field.args) check(`${type.name}.${field.name}(${arg.name})`, arg.description);
        }
      } else if (isInputObjectType(type)) {
        for (const field of Object.values(type.getFields())) check(`${type.name}.${field.name}`, field.description);
      } else if (isEnumType(type)) {
        for (const value of type.getValues()) check(`${type.name}.${value.name}`, value.description);
      }
    }
    expect(undescribed).toEqual([]);
    expect(described).toEqual(expect.arrayContaining(['Date', 'Student.dateOfBirth', 'Query.students(after)', 'DistrictStatus.SUSPENDED']));
  });
});
