import type { Opt } from '@mikro-orm/core';

/**
 * A database enum value ('active') as its GraphQL enum value ('ACTIVE'). Typed `Uppercase<T>`, so with the
 * generated resolver types a database value the SDL's enum lacks fails the type-check. (`Opt<T>` is how
 * MikroORM marks a property with a default; the brand is dropped.)
 */
export const graphqlEnumValue = <T extends string>(value: T | Opt<T>): Uppercase<T> => value.toUpperCase() as Uppercase<T>;
