# Tests are opa test's: the validator must not load this file. If it did, the
# deny below would show up in every report.
package syncbridge.labels_test

deny contains "a _test.rego file was loaded as a policy"

test_unlabelled_is_denied if {
	count(data.syncbridge.labels.deny) == 1 with input as {"objects": [{"kind": "ConfigMap", "metadata": {"name": "x"}}]}
}
