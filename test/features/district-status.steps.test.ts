import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { describeFeature, loadFeature } from '@amiceli/vitest-cucumber';
import { expect } from 'vitest';
import { setDistrictStatus, type DistrictStatus } from '../../tools/onboarding.ts';
import { demo, startTestPlatform, type GraphQLResult, type TestPlatform } from '../support/platform.ts';
import { expectRefused, idsIn } from './world.ts';

const feature = await loadFeature(fileURLToPath(new URL('./district-status.feature', import.meta.url)));
const STUDENTS = '{ students(first: 100) { edges { node { id } } } }';
const east = demo('east-lake').tenantId;

describeFeature(feature, ({ Scenario, ScenarioOutline, BeforeAllScenarios, AfterAllScenarios }) => {
  let platform: TestPlatform;
  let answer: GraphQLResult;
  let caller: string;

  BeforeAllScenarios(async () => {
    // Status is read on every request, so a change applies at once.
    platform = await startTestPlatform({ districtStatusTtlMs: 0 });
  });
  AfterAllScenarios(() => platform?.stop());

  const setEastLake = async (status: DistrictStatus) =>
    setDistrictStatus(await platform.connect(platform.databases.districts!.ownerUrl), east, status);
  const noStudents = () => {
    expect(answer.body.data).toBeUndefined();
    expect(idsIn(answer.text)).toEqual([]);
  };

  ScenarioOutline('A <status> district is refused', ({ Given, When, Then, And }, variables) => {
    Given('East Lake is <status>', () => setEastLake(variables.status as DistrictStatus));
    When('East Lake asks for its students', async () => {
      answer = await platform.as('east-lake', STUDENTS);
    });
    Then('the request is refused with "<message>"', () => expectRefused(answer, 403, variables.message, 'FORBIDDEN'));
    And('no student records are returned', noStudents);
    And('once East Lake is active again its students are served', async () => {
      await setEastLake('active');
      const { body } = await platform.as('east-lake', STUDENTS);
      expect(body.data.students.edges.length).toBeGreaterThan(0);
    });
  });

  Scenario('A district that was never registered is refused', ({ Given, When, Then, And }) => {
    Given('a valid sign-in for a district that was never registered', () => {
      caller = randomUUID();
    });
    When('that district asks for its students', async () => {
      answer = await platform.as(caller, STUDENTS);
    });
    Then('the request is refused with "district is not registered"', () =>
      expectRefused(answer, 403, 'district is not registered', 'FORBIDDEN'),
    );
    And('no student records are returned', noStudents);
  });
});
