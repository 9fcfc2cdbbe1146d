Feature: Only active, registered districts are served
  As an operator who suspends a district or moves it to another region
  I want every request of that district refused while it is not active
  So that nobody reads or writes its records in the meantime

  Scenario Outline: A <status> district is refused
    Given East Lake is <status>
    When East Lake asks for its students
    Then the request is refused with "<message>"
    And no student records are returned
    And once East Lake is active again its students are served

    Examples:
      | status    | message                                     |
      | suspended | district is suspended                       |
      | migrating | district is being migrated, try again later |

  Scenario: A district that was never registered is refused
    Given a valid sign-in for a district that was never registered
    When that district asks for its students
    Then the request is refused with "district is not registered"
    And no student records are returned
