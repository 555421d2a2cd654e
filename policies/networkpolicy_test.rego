package syncbridge.networkpolicy_test

import data.syncbridge.lib.testing
import data.syncbridge.networkpolicy

test_good_fixture_passes if {
	count(networkpolicy.deny) == 0 with input as data.fixtures.good
}

test_bad_fixture_breaks_only_this_policy if {
	testing.firing(data.fixtures.bad.networkpolicy) == {"networkpolicy"}
}

_namespace_fix(namespace) := sprintf("add one in %s with podSelector: {}, policyTypes: [Ingress, Egress] and no rules (then allow each needed flow in its own policy)", [namespace])

_pods_fix(namespace) := sprintf("so until the namespace's own default deny syncs they are open; add one in %s selecting them with policyTypes: [Ingress, Egress] and only the flows they need", [namespace])

test_bad_fixture_names_each_violation_and_its_fix if {
	networkpolicy.deny == {
		sprintf("Namespace/-/harmonyflow-prod: no default-deny NetworkPolicy for Egress; %s", [_namespace_fix("harmonyflow-prod")]),
		sprintf("Namespace/-/redis-prod: no default-deny NetworkPolicy for Egress; %s", [_namespace_fix("redis-prod")]),
		sprintf("Namespace/-/redis-prod: no default-deny NetworkPolicy for Ingress; %s", [_namespace_fix("redis-prod")]),
		sprintf("Deployment/harmonyflow-staging/ws-edge: no NetworkPolicy in this root isolates its pods for Ingress, %s", [_pods_fix("harmonyflow-staging")]),
		"NetworkPolicy/harmonyflow-staging/allow-everything: egress rule 0 admits every peer on every port, undoing the default deny; name the peers (to:) and ports it is for",
	} with input as data.fixtures.bad.networkpolicy
}

_policy(name, spec) := {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": "n"}, "spec": spec}

_namespace := {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}}

_pods := testing.workload("Deployment", "app", "n", {"containers": []})

_deny_all(selector) := _policy("app-deny", {"podSelector": selector, "policyTypes": ["Ingress", "Egress"]})

test_separate_ingress_and_egress_policies_suffice if {
	ingress := _policy("deny-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]})
	egress := _policy("deny-egress", {"podSelector": {}, "policyTypes": ["Egress"]})
	count(networkpolicy.deny) == 0 with input as testing.root("prod", [_namespace, _pods, ingress, egress])
}

# Without policyTypes the API infers Egress only from egress rules, and a
# policy with rules is not a default deny for that direction.
test_inferred_types_and_rules_do_not_make_a_default_deny if {
	inferred := _policy("inferred", {"podSelector": {}, "egress": [{"to": [{"podSelector": {}}]}]})
	denied := networkpolicy.deny with input as testing.root("prod", [_namespace, _pods, inferred])
	count(denied) == 1
	some msg in denied
	startswith(msg, "Namespace/-/n: no default-deny NetworkPolicy for Egress")
}

# A namespace created here needs the namespace-wide deny, not a per-app one.
test_a_created_namespace_needs_an_empty_selector if {
	count(networkpolicy.deny) == 2 with input as testing.root("prod", [_namespace, _pods, _deny_all({"matchLabels": {"app.kubernetes.io/name": "app"}})])
}

# Pods in a namespace created elsewhere need a policy here isolating them.
test_guest_pods_are_isolated_by_a_policy_selecting_them if {
	allow := _policy("app", {
		"podSelector": {"matchLabels": {"app.kubernetes.io/name": "app"}},
		"policyTypes": ["Ingress", "Egress"],
		"ingress": [{"from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "ws-edge"}}}]}],
		"egress": [{"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}], "ports": [{"port": 53, "protocol": "UDP"}]}],
	})
	count(networkpolicy.deny) == 0 with input as testing.root("prod", [_pods, allow])
	count(networkpolicy.deny) == 1 with input as testing.root("prod", [_pods, json.patch(allow, [{"op": "replace", "path": "/spec/policyTypes", "value": ["Ingress"]}])])
	count(networkpolicy.deny) == 0 with input as testing.root("prod", [_pods, _deny_all({"matchLabels": {"app.kubernetes.io/name": "app"}})])
	count(networkpolicy.deny) == 0 with input as testing.root("prod", [_pods, _deny_all({})])
	count(networkpolicy.deny) == 2 with input as testing.root("prod", [_pods, _deny_all({"matchLabels": {"app.kubernetes.io/name": "other"}})])
	count(networkpolicy.deny) == 2 with input as testing.root("prod", [_pods])
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

test_peers_that_are_everyone_allow_everything if {
	every peer in [{"namespaceSelector": {}}, {"ipBlock": {"cidr": "0.0.0.0/0"}}, {"ipBlock": {"cidr": "::/0"}}] {
		open := _policy("open", {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"from": [peer]}]})
		count(networkpolicy.deny) == 1 with input as testing.root("prod", [_namespace, _pods, _deny_all({}), open])
	}
}

test_narrowed_peers_are_not_everyone if {
	every peer in [
		{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "prometheus"}}},
		{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}},
		{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}},
	] {
		narrowed := _policy("narrowed", {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"from": [peer]}]})
		count(networkpolicy.deny) == 0 with input as testing.root("prod", [_namespace, _pods, _deny_all({}), narrowed])
	}
}

test_a_rule_with_ports_only_is_not_allow_all if {
	dns := _policy("dns", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]})
	count(networkpolicy.deny) == 0 with input as testing.root("prod", [_namespace, _pods, _deny_all({}), dns])
}

# A namespace only an upstream chart's controllers live in is the chart's;
# one of ours with the same objects is not.
test_chart_owned_namespaces_need_no_default_deny_here if {
	linkerd := {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "linkerd"}}
	count(networkpolicy.deny) == 0 with input as testing.root("prod", [linkerd])
	ours := {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "harmonyflow-prod"}}
	count(networkpolicy.deny) == 2 with input as testing.root("prod", [ours])
}
