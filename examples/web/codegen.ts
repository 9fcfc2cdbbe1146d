/**
 * `npm run example:codegen`: the example's TypeScript types from the graph's API schema (the committed supergraph,
 * without its federation directives) and its operations in operations/, through GraphQL Code Generator's client
 * preset. The output, src/generated/, is committed; test/codegen.test.ts fails when it is stale.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CodegenConfig } from '@graphql-codegen/cli';
import { Supergraph } from '@apollo/federation-internals';
import { printSchema } from 'graphql';
import { PROJECT_ROOT, SUPERGRAPH_PATH } from '../../config/registry.ts';

/** The operations this page sends: files of the one operations folder every frontend ships from. */
export const EXAMPLE_OPERATIONS = ['operations/webDistrict.graphql', 'operations/webStudents.graphql'];
export const EXAMPLE_GENERATED = 'examples/web/src/generated/';

/** What clients see: the API schema the gateway serves, as SDL (descriptions included). */
const apiSchema = printSchema(Supergraph.build(readFileSync(SUPERGRAPH_PATH, 'utf8')).apiSchema().toGraphQLJSSchema());

const config: CodegenConfig = {
  overwrite: true,
  silent: true,
  schema: apiSchema,
  documents: EXAMPLE_OPERATIONS.map((file) => join(PROJECT_ROOT, file)),
  generates: {
    [join(PROJECT_ROOT, EXAMPLE_GENERATED)]: {
      preset: 'client',
      presetConfig: { fragmentMasking: false },
      config: {
        useTypeImports: true,
        enumsAsTypes: true,
        // The wire formats of docs/schema.md: ids are UUID strings, a Date is a `YYYY-MM-DD` string.
        scalars: { ID: 'string', Date: 'string' },
      },
    },
  },
};

export default config;
