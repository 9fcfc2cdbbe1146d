import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { describeFeature, loadFeature } from '@amiceli/vitest-cucumber';
import { SignJWT, importJWK } from 'jose';
import { expect } from 'vitest';
import { registerDistrict } from '../../tools/onboarding.ts';
import { TENANT_ID_HEADER } from '../../tenancy/tenant-context.ts';
import { demo, startTestPlatform, type GraphQLResult, type TestPlatform } from '../support/platform.ts';
import { EVERYTHING, expectRefused, idsIn, listsIn, ownedIds } from './world.ts';

const feature = await loadFeature(fileURLToPath(new URL('./district-isolation.feature', import.meta.url)));
const north = demo('north-valley').tenantId;
const south = demo('south-ridge').tenantId;
const east = demo('east-lake').tenantId;

describeFeature(feature, ({ Background, Scenario, BeforeAllScenarios, AfterAllScenarios }) => {
  let platform: TestPlatform;
  let answer: GraphQLResult;
  let southStudent: { id: string; firstName: string };

  BeforeAllScenarios(async () => {
    platform = await startTestPlatform();
  });
  AfterAllScenarios(() => platform?.stop());

  const foreignIds = async () => new Set([...(await ownedIds(platform, south)), ...(await ownedIds(platform, east))]);
  /** A South Ridge student as the database holds it, read as the owner (not through the gateway under test). */
  const studentInDatabase = async (id?: string) => {
    const owner = await platform.connect(platform.databases.students!.ownerUrl);
    const { rows } = await owner.query<{ id: string; firstName: string }>(
      `select id, first_name as "firstName" from student where tenant_id = $1 ${id ? 'and id = $2' : ''} order by last_name, first_name, id limit 1`,
      id ? [south, id] : [south],
    );
    expect(rows).toHaveLength(1);
    return rows[0]!;
  };
  const givenSouthStudent = async () => {
    southStudent = await studentInDatabase();
  };

  Background(({ Given }) => {
    Given('the districts North Valley, South Ridge and East Lake are on the platform', async () => {
      for (const slug of ['north-valley', 'south-ridge', 'east-lake'] as const) {
        const { body } = await platform.as(slug, '{ district { id } }');
        expect(body.data.district.id).toBe(demo(slug).tenantId);
      }
    });
  });

  Scenario('Reads stay in the district', ({ When, Then, And }) => {
    When('North Valley lists its schools, students, staff, sections and every other record a subgraph lists', async () => {
      answer = await platform.as('north-valley', EVERYTHING);
      expect(answer.body.errors).toBeUndefined();
      // Every list holds records, so the checks below have something in each subgraph to look at.
      const empty = Object.entries(listsIn(answer.body.data))
        .filter(([, records]) => records.length === 0)
        .map(([field]) => field);
      expect(empty).toEqual([]);
    });
    Then('every record returned belongs to North Valley', async () => {
      const own = await ownedIds(platform, north);
      expect(idsIn(answer.text).filter((id) => !own.has(id))).toEqual([]);
    });
    And("none of South Ridge's or East Lake's records appear", async () => {
      const foreign = await foreignIds();
      expect(idsIn(answer.text).filter((id) => foreign.has(id))).toEqual([]);
      expect(answer.text).not.toMatch(/South Ridge|East Lake/);
    });
  });

  Scenario("Looking up another district's student is refused", ({ Given, When, Then, And }) => {
    Given('a student who belongs to South Ridge', givenSouthStudent);
    When('North Valley asks for that student by id', async () => {
      answer = await platform.as('north-valley', 'query ($id: ID!) { student(id: $id) { id firstName lastName } }', {
        id: southStudent.id,
      });
    });
    Then('North Valley receives no student', () => {
      expect(answer.body).toEqual({ data: { student: null } });
    });
    And('the answer mentions nothing of South Ridge', async () => {
      const foreign = await foreignIds();
      expect(idsIn(answer.text).filter((id) => foreign.has(id))).toEqual([]);
    });
  });

  Scenario("Changing another district's student is refused", ({ Given, When, Then, And }) => {
    Given('a student who belongs to South Ridge', givenSouthStudent);
    When('North Valley tries to rename that student to "Hijacked"', async () => {
      answer = await platform.as(
        'north-valley',
        'mutation ($id: ID!) { updateStudent(id: $id, input: { firstName: "Hijacked" }) { id firstName } }',
        { id: southStudent.id },
      );
    });
    Then('North Valley is told there is no such student', () => {
      expect(answer.body).toEqual({ data: { updateStudent: null } });
    });
    And("South Ridge still sees the student's original name", async () => {
      expect(southStudent.firstName).not.toBe('Hijacked');
      expect(await studentInDatabase(southStudent.id)).toEqual(southStudent);
      const { body } = await platform.as('south-ridge', 'query ($id: ID!) { student(id: $id) { firstName } }', { id: southStudent.id });
      expect(body.data.student.firstName).toBe(southStudent.firstName);
    });
  });

  Scenario('A header naming another district changes nothing', ({ When, Then }) => {
    When('North Valley signs in as itself but adds a header naming South Ridge', async () => {
      answer = await platform.graphql(
        { query: EVERYTHING },
        { token: await platform.token('north-valley'), headers: { [TENANT_ID_HEADER]: south } },
      );
    });
    Then("the answer holds North Valley's records only", async () => {
      expect(answer.body.data.district.id).toBe(north);
      expect(answer.body.data.students.edges.length).toBeGreaterThan(0);
      const own = await ownedIds(platform, north);
      expect(idsIn(answer.text).filter((id) => !own.has(id))).toEqual([]);
    });
  });

  Scenario('A signed-in user without a valid district is refused', ({ When, Then, And }) => {
    When(`someone presents a sign-in token whose district is "south-ridge' or 1=1 --"`, async () => {
      // Correctly signed by the sign-in provider: only the district value is wrong.
      const key = await importJWK(platform.keys.devIssuer.privateJwk, 'ES256');
      const token = await new SignJWT({ tenant_id: "south-ridge' or 1=1 --" })
        .setProtectedHeader({ alg: 'ES256', kid: platform.keys.devIssuer.privateJwk.kid })
        .setIssuer(platform.auth.issuer)
        .setAudience(platform.auth.audience)
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(key);
      answer = await platform.graphql({ query: EVERYTHING }, { token });
    });
    Then('the request is refused as unauthenticated with "token tenant_id claim must be one district UUID"', () => {
      expectRefused(answer, 401, 'token tenant_id claim must be one district UUID', 'UNAUTHENTICATED');
    });
    And('no records are returned', () => {
      expect(answer.body.data).toBeUndefined();
      expect(idsIn(answer.text)).toEqual([]);
    });
  });

  Scenario('A new district starts empty', ({ Given, When, Then, And }) => {
    const lakeside = { tenantId: randomUUID(), slug: 'lakeside-charter', name: 'Lakeside Charter' };
    Given('the district Lakeside Charter has just been registered', async () => {
      const owner = await platform.connect(platform.databases.districts!.ownerUrl);
      expect(await registerDistrict(owner, lakeside, 'active')).toEqual({ created: true, status: 'active' });
    });
    When('Lakeside Charter lists its schools, students, staff, sections and every other record a subgraph lists', async () => {
      answer = await platform.as(lakeside.tenantId, EVERYTHING);
      expect(answer.body.errors).toBeUndefined();
    });
    Then('it sees its own district record', () => {
      expect(answer.body.data.district).toEqual({ id: lakeside.tenantId, name: 'Lakeside Charter' });
    });
    And('it sees no records in any list', () => {
      const lists = listsIn(answer.body.data);
      expect(Object.keys(lists)).toEqual(expect.arrayContaining(['schools', 'students', 'staff', 'sections']));
      expect(lists).toEqual(Object.fromEntries(Object.keys(lists).map((field) => [field, []])));
    });
  });
});
