/* eslint-disable */
import * as types from './graphql';
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';

/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "query WebDistrict {\n  district {\n    id\n    name\n    slug\n  }\n  schools {\n    id\n    name\n  }\n}": typeof types.WebDistrictDocument,
    "query WebStudents($first: Int, $after: String) {\n  students(first: $first, after: $after) {\n    edges {\n      cursor\n      node {\n        id\n        firstName\n        lastName\n        grade\n        dateOfBirth\n        school {\n          name\n        }\n      }\n    }\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n  }\n}": typeof types.WebStudentsDocument,
};
const documents: Documents = {
    "query WebDistrict {\n  district {\n    id\n    name\n    slug\n  }\n  schools {\n    id\n    name\n  }\n}": types.WebDistrictDocument,
    "query WebStudents($first: Int, $after: String) {\n  students(first: $first, after: $after) {\n    edges {\n      cursor\n      node {\n        id\n        firstName\n        lastName\n        grade\n        dateOfBirth\n        school {\n          name\n        }\n      }\n    }\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n  }\n}": types.WebStudentsDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 *
 *
 * @example
 * ```ts
 * const query = graphql(`query GetUser($id: ID!) { user(id: $id) { name } }`);
 * ```
 *
 * The query argument is unknown!
 * Please regenerate the types.
 */
export function graphql(source: string): unknown;

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "query WebDistrict {\n  district {\n    id\n    name\n    slug\n  }\n  schools {\n    id\n    name\n  }\n}"): (typeof documents)["query WebDistrict {\n  district {\n    id\n    name\n    slug\n  }\n  schools {\n    id\n    name\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "query WebStudents($first: Int, $after: String) {\n  students(first: $first, after: $after) {\n    edges {\n      cursor\n      node {\n        id\n        firstName\n        lastName\n        grade\n        dateOfBirth\n        school {\n          name\n        }\n      }\n    }\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n  }\n}"): (typeof documents)["query WebStudents($first: Int, $after: String) {\n  students(first: $first, after: $after) {\n    edges {\n      cursor\n      node {\n        id\n        firstName\n        lastName\n        grade\n        dateOfBirth\n        school {\n          name\n        }\n      }\n    }\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n  }\n}"];

export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}

export type DocumentType<TDocumentNode extends DocumentNode<any, any>> = TDocumentNode extends DocumentNode<  infer TType,  any>  ? TType  : never;