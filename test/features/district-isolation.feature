Feature: Each district sees only its own records
  As a district administrator or an auditor
  I want every read and every change to stay inside my district
  So that no other district can see or alter our students' records

  Background:
    Given the districts North Valley, South Ridge and East Lake are on the platform

  Scenario: Reads stay in the district
    When North Valley lists its schools, students, staff, sections and every other record a subgraph lists
    Then every record returned belongs to North Valley
    And none of South Ridge's or East Lake's records appear

  Scenario: Looking up another district's student is refused
    Given a student who belongs to South Ridge
    When North Valley asks for that student by id
    Then North Valley receives no student
    And the answer mentions nothing of South Ridge

  Scenario: Changing another district's student is refused
    Given a student who belongs to South Ridge
    When North Valley tries to rename that student to "Hijacked"
    Then North Valley is told there is no such student
    And South Ridge still sees the student's original name

  Scenario: A header naming another district changes nothing
    When North Valley signs in as itself but adds a header naming South Ridge
    Then the answer holds North Valley's records only

  Scenario: A signed-in user without a valid district is refused
    When someone presents a sign-in token whose district is "south-ridge' or 1=1 --"
    Then the request is refused as unauthenticated with "token tenant_id claim must be one district UUID"
    And no records are returned

  Scenario: A new district starts empty
    Given the district Lakeside Charter has just been registered
    When Lakeside Charter lists its schools, students, staff, sections and every other record a subgraph lists
    Then it sees its own district record
    And it sees no records in any list
