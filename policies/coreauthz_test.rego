package syncbridge.coreauthz_test

import data.syncbridge.coreauthz
import data.syncbridge.lib.testing

test_good_fixture_passes if {
	count(coreauthz.deny) == 0 with input as data.fixtures.good
}

test_bad_fixture_breaks_only_this_policy if {
	testing.firing(data.fixtures.bad.coreauthz) == {"coreauthz"}
}

_must := "it may require only MeshTLSAuthentications, rendered here, of ws-edge's ServiceAccount"

test_bad_fixture_names_each_violation_and_its_fix if {
	coreauthz.deny == {
		sprintf("AuthorizationPolicy/harmonyflow-prod/namespace-scrape: applies to session-core's gRPC Server session-core-grpc but admits ServiceAccount monitoring/prometheus through MeshTLSAuthentication/harmonyflow-prod/prometheus; %s", [_must]),
		sprintf("AuthorizationPolicy/harmonyflow-prod/namespace-scrape: applies to session-core's gRPC Server session-core-grpc but requires MeshTLSAuthentication ws-edge-old, which this root does not render, so whom it admits cannot be checked; %s", [_must]),
		sprintf("AuthorizationPolicy/harmonyflow-prod/session-core-grpc: applies to session-core's gRPC Server session-core-grpc but requires NetworkAuthentication cluster-network, which is not a mesh identity; %s", [_must]),
		"Deployment/harmonyflow-prod/session-core-canary: no policy.linkerd.io Server selects its gRPC port 50051, so Linkerd cannot restrict who calls it; add a Server with a podSelector matching its pod labels and port: 50051, authorized only for ws-edge",
		"Deployment/harmonyflow-prod/ws-edge: ws-edge runs as the namespace's default ServiceAccount, which every pod there shares, so session-core's authorization cannot tell ws-edge apart; set spec.template.spec.serviceAccountName: ws-edge (its own ServiceAccount)",
		"Server/harmonyflow-prod/session-core-grpc: accessPolicy all-unauthenticated lets traffic no AuthorizationPolicy covers reach session-core's gRPC port; set accessPolicy: deny (or remove it)",
		"Server/harmonyflow-prod/session-core-grpc: no AuthorizationPolicy admits ws-edge alone to session-core's gRPC port; add one targeting this Server whose requiredAuthenticationRefs name a MeshTLSAuthentication of ServiceAccount ws-edge",
	} with input as data.fixtures.bad.coreauthz
}

# A core pod serving gRPC on 50051, its Server, and a policy for `mta`.
_core := testing.workload("Deployment", "session-core", "h", {"containers": [{"name": "core", "image": testing.core_image, "ports": [{"name": "grpc", "containerPort": 50051}]}]})

_server := {"apiVersion": "policy.linkerd.io/v1beta3", "kind": "Server", "metadata": {"name": "core-grpc", "namespace": "h"}, "spec": {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "session-core"}}, "port": 50051}}

_mta(spec) := {"apiVersion": "policy.linkerd.io/v1alpha1", "kind": "MeshTLSAuthentication", "metadata": {"name": "callers", "namespace": "h"}, "spec": spec}

_policy(target) := {"apiVersion": "policy.linkerd.io/v1alpha1", "kind": "AuthorizationPolicy", "metadata": {"name": "core", "namespace": "h"}, "spec": {
	"targetRef": target,
	"requiredAuthenticationRefs": [{"group": "policy.linkerd.io", "kind": "MeshTLSAuthentication", "name": "callers"}],
}}

_to_server := {"group": "policy.linkerd.io", "kind": "Server", "name": "core-grpc"}

_root(objects) := testing.root("prod", array.concat([_core, _server], objects))

test_numeric_port_and_identity_string_pass if {
	mta := _mta({"identities": ["ws-edge.h.serviceaccount.identity.linkerd.cluster.local"]})
	count(coreauthz.deny) == 0 with input as _root([mta, _policy(_to_server)])
}

test_other_identities_are_denied if {
	every identity in ["*", "prometheus.monitoring.serviceaccount.identity.linkerd.cluster.local", "ws-edge.other.serviceaccount.identity.linkerd.cluster.local"] {
		count(coreauthz.deny) == 2 with input as _root([_mta({"identities": [identity]}), _policy(_to_server)])
	}
}

test_edge_account_in_another_namespace_is_denied if {
	mta := _mta({"identityRefs": [{"kind": "ServiceAccount", "name": "ws-edge", "namespace": "elsewhere"}]})
	count(coreauthz.deny) == 2 with input as _root([mta, _policy(_to_server)])
}

test_a_whole_namespace_of_identities_is_denied if {
	mta := _mta({"identityRefs": [{"kind": "Namespace", "name": "h"}]})
	count(coreauthz.deny) == 2 with input as _root([mta, _policy(_to_server)])
}

# When the root renders ws-edge, its own ServiceAccount is the one admitted.
test_rendered_edge_account_is_the_identity if {
	edge := testing.workload("Deployment", "ws-edge", "h", {"serviceAccountName": "edge-sa", "containers": [{"name": "e", "image": testing.edge_image}]})
	good := _mta({"identityRefs": [{"kind": "ServiceAccount", "name": "edge-sa"}]})
	count(coreauthz.deny) == 0 with input as _root([edge, good, _policy(_to_server)])
	stale := _mta({"identityRefs": [{"kind": "ServiceAccount", "name": "ws-edge"}]})
	count(coreauthz.deny) == 2 with input as _root([edge, stale, _policy(_to_server)])
}

# A policy on a route of the Server applies to the Server's traffic.
test_route_policies_apply_to_the_server if {
	route := {"apiVersion": "policy.linkerd.io/v1beta3", "kind": "GRPCRoute", "metadata": {"name": "sessions", "namespace": "h"}, "spec": {"parentRefs": [{"group": "policy.linkerd.io", "kind": "Server", "name": "core-grpc"}]}}
	edge_only := json.patch(_policy(_to_server), [{"op": "replace", "path": "/metadata/name", "value": "edge"}, {"op": "replace", "path": "/spec/requiredAuthenticationRefs/0/name", "value": "edge"}])
	edge_mta := json.patch(_mta({"identityRefs": [{"kind": "ServiceAccount", "name": "ws-edge"}]}), [{"op": "replace", "path": "/metadata/name", "value": "edge"}])
	open := _policy({"group": "policy.linkerd.io", "kind": "GRPCRoute", "name": "sessions"})
	open_mta := _mta({"identities": ["*"]})
	denied := coreauthz.deny with input as _root([route, edge_only, edge_mta, open, open_mta])
	denied == {`AuthorizationPolicy/h/core: applies to session-core's gRPC Server core-grpc but admits identity "*" through MeshTLSAuthentication/h/callers; it may require only MeshTLSAuthentications, rendered here, of ws-edge's ServiceAccount`}
}

test_policy_without_authentication_is_denied if {
	open := json.patch(_policy(_to_server), [{"op": "replace", "path": "/spec/requiredAuthenticationRefs", "value": []}])
	count(coreauthz.deny) == 2 with input as _root([open])
}

# The outbox relay runs core's image without a gRPC port.
test_relay_without_grpc_port_is_not_core if {
	relay := testing.workload("Deployment", "outbox-relay", "h", {"containers": [{"name": "relay", "image": testing.core_image, "ports": [{"name": "metrics", "containerPort": 9103}]}]})
	count(coreauthz.deny) == 0 with input as testing.root("prod", [relay])
}

test_server_on_another_port_or_pods_does_not_count if {
	other_port := json.patch(_server, [{"op": "replace", "path": "/spec/port", "value": "metrics"}])
	count(coreauthz.deny) == 1 with input as testing.root("prod", [_core, other_port])
	other_pods := json.patch(_server, [{"op": "replace", "path": "/spec/podSelector/matchLabels", "value": {"app.kubernetes.io/name": "ws-edge"}}])
	count(coreauthz.deny) == 1 with input as testing.root("prod", [_core, other_pods])
}

# kubelet's gRPC probes are unmeshed: a health-only route may admit them by network.
_probe_route(kind, rules) := {"apiVersion": "policy.linkerd.io/v1beta3", "kind": kind, "metadata": {"name": "probe", "namespace": "h"}, "spec": {
	"parentRefs": [{"group": "policy.linkerd.io", "kind": "Server", "name": "core-grpc"}],
	"rules": rules,
}}

_probe_policy(kind) := {"apiVersion": "policy.linkerd.io/v1alpha1", "kind": "AuthorizationPolicy", "metadata": {"name": "probe", "namespace": "h"}, "spec": {
	"targetRef": {"group": "policy.linkerd.io", "kind": kind, "name": "probe"},
	"requiredAuthenticationRefs": [{"group": "policy.linkerd.io", "kind": "NetworkAuthentication", "name": "nodes"}],
}}

_edge_objects := [
	_mta({"identityRefs": [{"kind": "ServiceAccount", "name": "ws-edge"}]}),
	_policy(_to_server),
]

test_health_only_routes_may_admit_kubelet_by_network if {
	http := _probe_route("HTTPRoute", [{"matches": [{"path": {"type": "Exact", "value": "/grpc.health.v1.Health/Check"}, "method": "POST"}]}])
	count(coreauthz.deny) == 0 with input as _root(array.concat(_edge_objects, [http, _probe_policy("HTTPRoute")]))
	grpc := _probe_route("GRPCRoute", [{"matches": [{"method": {"service": "grpc.health.v1.Health", "method": "Check"}}]}])
	count(coreauthz.deny) == 0 with input as _root(array.concat(_edge_objects, [grpc, _probe_policy("GRPCRoute")]))
}

test_routes_beyond_health_may_not_admit_by_network if {
	every rules in [
		[{"matches": [{"path": {"type": "Exact", "value": "/grpc.health.v1.Health/Check"}}, {"path": {"type": "PathPrefix", "value": "/syncbridge.session.v1.SessionService/"}}]}],
		[{"matches": [{"path": {"type": "Exact", "value": "/grpc.health.v1.Health/Check"}}]}, {}],
		[{}],
	] {
		denied := coreauthz.deny with input as _root(array.concat(_edge_objects, [_probe_route("HTTPRoute", rules), _probe_policy("HTTPRoute")]))
		denied == {"AuthorizationPolicy/h/probe: applies to session-core's gRPC Server core-grpc but requires NetworkAuthentication nodes, which is not a mesh identity; it may require only MeshTLSAuthentications, rendered here, of ws-edge's ServiceAccount"}
	}
}

# A base without namespace or environment gets its Server from the overlays.
test_bases_are_left_to_their_overlays if {
	base := json.remove(_core, ["metadata/namespace"])
	count(coreauthz.deny) == 0 with input as testing.root(null, [base])
	count(coreauthz.deny) == 1 with input as testing.root("dev", [base])
}
