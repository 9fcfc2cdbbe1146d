/**
 * The isolation attack battery: North Valley attacks South Ridge and East Lake through every door —
 * tokens, headers, GraphQL, the database, and concurrency. Closes with `isolation: N attacks, 0 leaks`.
 */
import { startBattery } from './harness.ts';
import { tokenForgeryAttacks } from './token-forgery.ts';
import { headerSpoofingAttacks } from './header-spoofing.ts';
import { graphqlAttacks } from './graphql.ts';
import { databaseAttacks } from './database.ts';
import { concurrencyAttacks } from './concurrency.ts';

const battery = await startBattery();
tokenForgeryAttacks(battery);
headerSpoofingAttacks(battery);
graphqlAttacks(battery);
databaseAttacks(battery);
concurrencyAttacks(battery);
