package syncbridge.networkpolicy_test

import data.syncbridge.lib.testing
import data.syncbridge.networkpolicy

test_good_fixture_passes if {
	count(networkpolicy.deny) == 0 with input as data.fixtures.good
}

test_bad_fixture_breaks_only_this_policy if {
	testing.firing(data.fixtures.bad.networkpolicy) == {"networkpolicy"}
}

_fix(namespace) := sprintf("add one in %s with podSelector: {}, policyTypes: [Ingress, Egress] and no rules (then allow each needed flow in its own policy)", [namespace])

test_bad_fixture_names_each_violation_and_its_fix if {
	networkpolicy.deny == {
		sprintf("Namespace/-/harmonyflow-prod: no default-deny NetworkPolicy for Egress; %s", [_fix("harmonyflow-prod")]),
		sprintf("Namespace/-/redis-prod: no default-deny NetworkPolicy for Egress; %s", [_fix("redis-prod")]),
		sprintf("Namespace/-/redis-prod: no default-deny NetworkPolicy for Ingress; %s", [_fix("redis-prod")]),
		"NetworkPolicy/harmonyflow-prod/allow-everything: egress rule 0 admits every peer on every port, undoing the default deny; name the peers (to:) and ports it is for",
	} with input as data.fixtures.bad.networkpolicy
}

_policy(name, spec) := {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": "n"}, "spec": spec}

_pods := testing.workload("Deployment", "app", "n", {"containers": []})

test_separate_ingress_and_egress_policies_suffice if {
	ingress := _policy("deny-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]})
	egress := _policy("deny-egress", {"podSelector": {}, "policyTypes": ["Egress"]})
	count(networkpolicy.deny) == 0 with input as testing.root("prod", [_pods, ingress, egress])
}

# Without policyTypes the API infers Egress only from egress rules, and a
# policy with rules is not a default deny for that direction.
test_inferred_types_and_rules_do_not_make_a_default_deny if {
	inferred := _policy("inferred", {"podSelector": {}, "egress": [{"to": [{"podSelector": {}}]}]})
	denied := networkpolicy.deny with input as testing.root("prod", [_pods, inferred])
	count(denied) == 1
	some msg in denied
	contains(msg, "no default-deny NetworkPolicy for Egress")
}

test_a_selective_policy_is_not_a_default_deny if {
	selective := _policy("app-only", {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "app"}}, "policyTypes": ["Ingress", "Egress"]})
	count(networkpolicy.deny) == 2 with input as testing.root("prod", [_pods, selective])
}

# Operators create pods for these resources in their namespace.
test_operator_clusters_need_a_default_deny if {
	cluster := {"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster", "metadata": {"name": "pg", "namespace": "postgresql-prod"}, "spec": {"instances": 3}}
	count(networkpolicy.deny) == 2 with input as testing.root("prod", [cluster])
}

# A base rendered without a namespace has none to protect yet.
test_objects_without_namespace_are_skipped if {
	unnamespaced := json.remove(_pods, ["metadata/namespace"])
	count(networkpolicy.deny) == 0 with input as testing.root(null, [unnamespaced])
}

test_a_rule_with_ports_only_is_not_allow_all if {
	dns := _policy("dns", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]})
	deny := _policy("default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
	count(networkpolicy.deny) == 0 with input as testing.root("prod", [_pods, deny, dns])
}
