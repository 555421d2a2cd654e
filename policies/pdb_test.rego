package syncbridge.pdb_test

import data.syncbridge.lib.testing
import data.syncbridge.pdb

test_good_fixture_passes if {
	count(pdb.deny) == 0 with input as data.fixtures.good
}

test_bad_fixture_breaks_only_this_policy if {
	testing.firing(data.fixtures.bad.pdb) == {"pdb"}
}

test_bad_fixture_names_each_violation_and_its_fix if {
	pdb.deny == {
		`Deployment/harmonyflow-prod/session-core: runs at least 3 replicas but no PodDisruptionBudget selects its pods; add one in namespace harmonyflow-prod whose selector matches the pod template's labels (e.g. minAvailable: 2)`,
		`PodDisruptionBudget/harmonyflow-prod/ws-edge: allows no voluntary eviction of Deployment/harmonyflow-prod/ws-edge at its 2 replicas, so node drains hang; lower minAvailable below 2 or set maxUnavailable to at least 1`,
	} with input as data.fixtures.bad.pdb
}

_app(replicas) := object.union(testing.workload("StatefulSet", "app", "n", {"containers": []}), {"spec": {"replicas": replicas}})

_budget(namespace, spec) := {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "app", "namespace": namespace}, "spec": spec}

test_single_replica_needs_no_budget if {
	count(pdb.deny) == 0 with input as testing.root("prod", [_app(1), testing.workload("Deployment", "default-one", "n", {"containers": []})])
}

test_budget_in_another_namespace_does_not_count if {
	budget := _budget("other", {"maxUnavailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": "app"}}})
	count(pdb.deny) == 1 with input as testing.root("prod", [_app(2), budget])
}

test_match_expressions_select if {
	selector := {"matchExpressions": [
		{"key": "app.kubernetes.io/name", "operator": "Exists"},
		{"key": "app.kubernetes.io/name", "operator": "In", "values": ["app", "other"]},
		{"key": "tier", "operator": "DoesNotExist"},
		{"key": "app.kubernetes.io/name", "operator": "NotIn", "values": ["other"]},
		{"key": "missing", "operator": "NotIn", "values": ["x"]},
	]}
	count(pdb.deny) == 0 with input as testing.root("prod", [_app(2), _budget("n", {"maxUnavailable": 1, "selector": selector})])
}

test_non_matching_expressions_do_not_select if {
	every expr in [
		{"key": "app.kubernetes.io/name", "operator": "DoesNotExist"},
		{"key": "app.kubernetes.io/name", "operator": "NotIn", "values": ["app"]},
		{"key": "app.kubernetes.io/name", "operator": "In", "values": ["other"]},
		{"key": "tier", "operator": "Exists"},
	] {
		count(pdb.deny) == 1 with input as testing.root("prod", [_app(2), _budget("n", {"maxUnavailable": 1, "selector": {"matchExpressions": [expr]}})])
	}
}

# A budget without a selector selects no pods (policy/v1).
test_budget_without_selector_selects_nothing if {
	count(pdb.deny) == 1 with input as testing.root("prod", [_app(2), _budget("n", {"maxUnavailable": 1})])
}

test_keda_minimum_above_one_needs_a_budget if {
	scaled := {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "app", "namespace": "n"}, "spec": {"scaleTargetRef": {"name": "app"}, "minReplicaCount": 3}}
	app := testing.workload("Deployment", "app", "n", {"containers": []})
	pdb.deny == {`Deployment/n/app: runs at least 3 replicas but no PodDisruptionBudget selects its pods; add one in namespace n whose selector matches the pod template's labels (e.g. minAvailable: 2)`} with input as testing.root("prod", [app, scaled])
}

test_budgets_that_block_drains_are_denied if {
	selector := {"matchLabels": {"app.kubernetes.io/name": "app"}}
	every spec in [{"maxUnavailable": 0}, {"maxUnavailable": "0%"}, {"minAvailable": "100%"}, {"minAvailable": "90%"}, {"minAvailable": 3}] {
		count(pdb.deny) == 1 with input as testing.root("prod", [_app(3), _budget("n", object.union(spec, {"selector": selector}))])
	}
}

test_budgets_that_pace_drains_pass if {
	selector := {"matchLabels": {"app.kubernetes.io/name": "app"}}
	every spec in [{"maxUnavailable": 1}, {"maxUnavailable": "34%"}, {"minAvailable": "66%"}, {"minAvailable": 2}] {
		count(pdb.deny) == 0 with input as testing.root("prod", [_app(3), _budget("n", object.union(spec, {"selector": selector}))])
	}
}
