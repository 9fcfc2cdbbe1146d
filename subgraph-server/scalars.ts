/**
 * The custom scalars of the subgraphs' SDL, implemented by graphql-scalars. Their wire formats are documented in
 * docs/schema.md.
 */
import { GraphQLError, GraphQLScalarType, Kind, getNamedType, type ASTVisitor, type ValidationContext, type ValueNode } from 'graphql';
import { GraphQLDate, GraphQLDateTime } from 'graphql-scalars';
import { badInput } from '../http/errors.ts';

/** graphql-scalars' verdict on a value (it throws on a date that is not `YYYY-MM-DD` or does not exist), as BAD_USER_INPUT. */
function checked(parse: () => unknown): string {
  try {
    // graphql-scalars parses to a JavaScript Date at 00:00 UTC; serialising it gives back the validated `YYYY-MM-DD`.
    return GraphQLDate.serialize(parse());
  } catch (error) {
    throw badInput(error instanceof Error ? error.message : String(error));
  }
}

/**
 * `Date`: graphql-scalars' `Date` (RFC 3339 `full-date`, `YYYY-MM-DD`), with one difference: input reaches the
 * resolvers as the validated `YYYY-MM-DD` string rather than a JavaScript Date, which is what the database column
 * (`date`, read back as a string by MikroORM) takes and gives, so no time zone can shift a day.
 */
export const DateScalar = new GraphQLScalarType<string, string>({
  name: GraphQLDate.name,
  description: GraphQLDate.description,
  serialize: (value) => GraphQLDate.serialize(value),
  parseValue: (value) => checked(() => GraphQLDate.parseValue(value)),
  parseLiteral: (ast: ValueNode) => checked(() => GraphQLDate.parseLiteral(ast, undefined)),
  extensions: { ...GraphQLDate.extensions, codegenScalarType: 'string' },
});

/**
 * `DateTime`: graphql-scalars' `DateTime` as it is. Resolvers return a JavaScript Date (a `timestamptz` column as
 * MikroORM reads it), which goes out as `2026-11-27T20:10:15.000Z`; input reaches them as a JavaScript Date.
 */
export const DateTimeScalar = GraphQLDateTime;

/**
 * A `Date` written inline in the operation is checked during validation, where a scalar cannot say which field
 * it is parsing. This rule runs first and names the argument or input field, so an inline literal is refused like
 * a variable: BAD_USER_INPUT naming the field (http/errors.ts keeps that code on a validation error it causes).
 */
export function dateLiteralsNamed(context: ValidationContext): ASTVisitor {
  const check = (field: string, value: ValueNode) => {
    if (value.kind === Kind.VARIABLE || value.kind === Kind.NULL || getNamedType(context.getInputType())?.name !== DateScalar.name) return;
    try {
      DateScalar.parseLiteral(value, undefined);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      context.reportError(
        new GraphQLError(`${field} is not a date written YYYY-MM-DD: ${reason}`, { nodes: value, extensions: { code: 'BAD_USER_INPUT' } }),
      );
    }
  };
  return { Argument: (node) => check(node.name.value, node.value), ObjectField: (node) => check(node.name.value, node.value) };
}
