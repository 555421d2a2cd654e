# The fixtures as a whole: the good root passes every policy, each bad root
# breaks exactly the policy it is named after, and every policy has one.
package syncbridge.fixtures_test

import data.syncbridge.lib.testing

test_good_fixture_passes_every_policy if {
	testing.firing(data.fixtures.good) == set()
}

test_every_policy_has_a_bad_fixture if {
	{name | some name, _ in data.fixtures.bad} == testing.policies
}

test_there_are_eleven_policies if {
	count(testing.policies) == 11
}
