# session-core trusts its callers' identity, so only ws-edge may reach its
# gRPC port: a Linkerd Server selects that port, every AuthorizationPolicy
# that applies to it (targeting the Server, a route of it, or the whole
# namespace) requires only a MeshTLSAuthentication of ws-edge's
# ServiceAccount, at least one such policy exists, and the Server's own
# default stays deny. One exception: a route that matches nothing but the
# gRPC health service may admit unauthenticated callers, because kubelet's
# gRPC probes are not meshed and Linkerd does not authorize them itself
# (linkerd/linkerd2#9595); the health service says SERVING and nothing more.
package syncbridge.coreauthz

import data.syncbridge.lib.k8s

_linkerd := "policy.linkerd.io"

# The gRPC port core serves (libs/config: SYNCBRIDGE_CORE_GRPC_PORT's default).
_grpc_port := 50051

# Core's gRPC ports: {"template", "name", "number"}, from long-running pods
# of the core image with a port named grpc or numbered 50051 (the outbox
# relay runs the same image without one), as deployed (not in a bare base).
_core_ports contains {"template": t, "name": object.get(port, "name", ""), "number": port.containerPort} if {
	some t in k8s.templates
	k8s.long_running(t.object)
	k8s.deployed(t.object)
	some c in t.template.spec.containers
	k8s.image_repository(c.image) == k8s.core_image
	some port in object.get(c, "ports", [])
	_is_grpc(port)
}

# A port as a Server names it: by name when it has one.
_port(p) := p.name if p.name != ""

else := sprintf("%d", [p.number])

_is_grpc(port) if port.name == "grpc"

_is_grpc(port) if port.containerPort == _grpc_port

_objects(kind) := {obj |
	some obj in input.objects
	k8s.is(obj, _linkerd, kind)
}

_servers(p) := {s |
	some s in _objects("Server")
	k8s.namespace(s) == k8s.namespace(p.template.object)
	k8s.selects(s.spec.podSelector, k8s.labels(p.template.template))
	s.spec.port in {p.name, p.number}
}

# ws-edge's pods and the ServiceAccount each runs as.
_edges contains {"template": t, "account": object.get(t.template.spec, "serviceAccountName", "default")} if {
	some t in k8s.templates
	k8s.long_running(t.object)
	some c in t.template.spec.containers
	k8s.image_repository(c.image) == k8s.edge_image
}

# The ServiceAccounts ws-edge runs as in a namespace: those of the ws-edge
# pods this root renders, else the base's `ws-edge` (the gitops contract).
# `default` never counts: every pod of the namespace shares it.
_edge_accounts(namespace) := accounts if {
	accounts := {e.account |
		some e in _edges
		k8s.namespace(e.template.object) == namespace
		e.account != "default"
	}
	count(accounts) > 0
} else := {"ws-edge"}

deny contains msg if {
	some e in _edges
	e.account == "default"
	msg := sprintf("%s: ws-edge runs as the namespace's default ServiceAccount, which every pod there shares, so session-core's authorization cannot tell ws-edge apart; set spec.template.spec.serviceAccountName: ws-edge (its own ServiceAccount)", [k8s.ref(e.template.object)])
}

# Every AuthorizationPolicy that applies to a Server.
_applicable(server) := {ap |
	some ap in _objects("AuthorizationPolicy")
	k8s.namespace(ap) == k8s.namespace(server)
	_targets(ap.spec.targetRef, server)
}

_targets(ref, server) if {
	ref.kind == "Server"
	ref.name == server.metadata.name
}

_targets(ref, server) if {
	ref.kind == "Namespace"
	ref.name == k8s.namespace(server)
}

_targets(ref, server) if {
	ref.kind in {"HTTPRoute", "GRPCRoute"}
	some route in input.objects
	route.kind == ref.kind
	route.metadata.name == ref.name
	k8s.namespace(route) == k8s.namespace(server)
	some parent in route.spec.parentRefs
	parent.kind == "Server"
	parent.name == server.metadata.name
}

# The policy targets a route whose every match is the gRPC health service
# (HTTPRoute paths under /grpc.health.v1.Health/, or GRPCRoute methods of
# service grpc.health.v1.Health); a route without matches matches everything.
_health_only(ap) if {
	ap.spec.targetRef.kind in {"HTTPRoute", "GRPCRoute"}
	some route in input.objects
	route.kind == ap.spec.targetRef.kind
	route.metadata.name == ap.spec.targetRef.name
	k8s.namespace(route) == k8s.namespace(ap)
	matches := [m | some rule in route.spec.rules; some m in object.get(rule, "matches", [])]
	count(matches) > 0
	every rule in route.spec.rules {
		count(object.get(rule, "matches", [])) > 0
	}
	every m in matches {
		_health_match(m)
	}
}

_health_service := "grpc.health.v1.Health"

_health_match(m) if {
	m.path.type in {"Exact", "PathPrefix"}
	startswith(m.path.value, sprintf("/%s/", [_health_service]))
}

_health_match(m) if m.method.service == _health_service

# Why an AuthorizationPolicy admits more than ws-edge; empty when it does not.
_problems(ap) := {problem | some [ref, problem] in _problem_set; ref == k8s.ref(ap)}

# [<the policy's ref>, <what it admits beyond ws-edge>] for every policy.

_problem_set contains [k8s.ref(ap), "requires no authentication, so every client passes"] if {
	some ap in _objects("AuthorizationPolicy")
	count(object.get(ap.spec, "requiredAuthenticationRefs", [])) == 0
}

_problem_set contains [k8s.ref(ap), sprintf("requires %s %s, which is not a mesh identity", [ref.kind, ref.name])] if {
	some ap in _objects("AuthorizationPolicy")
	some ref in ap.spec.requiredAuthenticationRefs
	ref.kind != "MeshTLSAuthentication"
}

_problem_set contains [k8s.ref(ap), sprintf("requires MeshTLSAuthentication %s, which this root does not render, so whom it admits cannot be checked", [ref.name])] if {
	some ap in _objects("AuthorizationPolicy")
	some ref in ap.spec.requiredAuthenticationRefs
	ref.kind == "MeshTLSAuthentication"
	count(_authentications(ap, ref)) == 0
}

_problem_set contains [k8s.ref(ap), sprintf("admits identity %q through %s", [identity, k8s.ref(mta)])] if {
	some ap in _objects("AuthorizationPolicy")
	some ref in ap.spec.requiredAuthenticationRefs
	some mta in _authentications(ap, ref)
	some identity in object.get(mta.spec, "identities", [])
	not _edge_identity(identity, k8s.namespace(ap))
}

_problem_set contains [k8s.ref(ap), sprintf("admits %s %s/%s through %s", [id.kind, object.get(id, "namespace", k8s.namespace(mta)), id.name, k8s.ref(mta)])] if {
	some ap in _objects("AuthorizationPolicy")
	some ref in ap.spec.requiredAuthenticationRefs
	some mta in _authentications(ap, ref)
	some id in object.get(mta.spec, "identityRefs", [])
	not _edge_ref(id, k8s.namespace(mta), k8s.namespace(ap))
}

_authentications(ap, ref) := {mta |
	some mta in _objects("MeshTLSAuthentication")
	mta.metadata.name == ref.name
	k8s.namespace(mta) == object.get(ref, "namespace", k8s.namespace(ap))
}

# Linkerd identities read <sa>.<namespace>.serviceaccount.identity.linkerd.<trust domain>.
_edge_identity(identity, namespace) if {
	some account in _edge_accounts(namespace)
	regex.match(sprintf(`^%s\.%s\.serviceaccount\.identity\.linkerd\.[a-z0-9.-]+$`, [account, namespace]), identity)
}

_edge_ref(id, mta_namespace, namespace) if {
	id.kind == "ServiceAccount"
	object.get(id, "namespace", mta_namespace) == namespace
	id.name in _edge_accounts(namespace)
}

deny contains msg if {
	some p in _core_ports
	count(_servers(p)) == 0
	msg := sprintf("%s: no %s Server selects its gRPC port %s, so Linkerd cannot restrict who calls it; add a Server with a podSelector matching its pod labels and port: %s, authorized only for ws-edge", [k8s.ref(p.template.object), _linkerd, _port(p), _port(p)])
}

deny contains msg if {
	some p in _core_ports
	some server in _servers(p)
	not _edge_only_policy(server)
	msg := sprintf("%s: no AuthorizationPolicy admits ws-edge alone to session-core's gRPC port; add one targeting this Server whose requiredAuthenticationRefs name a MeshTLSAuthentication of ServiceAccount %s", [k8s.ref(server), concat(" or ", _edge_accounts(k8s.namespace(server)))])
}

_edge_only_policy(server) if {
	some ap in _applicable(server)
	count(_problems(ap)) == 0
}

deny contains msg if {
	some p in _core_ports
	some server in _servers(p)
	some ap in _applicable(server)
	not _health_only(ap)
	some problem in _problems(ap)
	msg := sprintf("%s: applies to session-core's gRPC Server %s but %s; it may require only MeshTLSAuthentications, rendered here, of ws-edge's ServiceAccount", [k8s.ref(ap), server.metadata.name, problem])
}

deny contains msg if {
	some p in _core_ports
	some server in _servers(p)
	server.spec.accessPolicy != "deny"
	msg := sprintf("%s: accessPolicy %s lets traffic no AuthorizationPolicy covers reach session-core's gRPC port; set accessPolicy: deny (or remove it)", [k8s.ref(server), server.spec.accessPolicy])
}
