# Default deny, so every allowed flow is a rule someone wrote: a namespace a
# root creates (a Namespace object) or runs operator clusters in has a
# NetworkPolicy with an empty podSelector denying all ingress and egress; a
# workload in a namespace created by another root is isolated for both
# directions by a policy in its own root (one that selects its pods and lists
# the direction in policyTypes: only the flows it allows pass), so each root's
# pods are denied by default whatever syncs first. A rule that admits every
# peer, or everything on every port, would undo that, so none may.
package syncbridge.networkpolicy

import data.syncbridge.lib.k8s

# Custom resources from which an operator creates pods in their namespace.
_pod_creating := {
	"postgresql.cnpg.io": {"Cluster"},
	"rabbitmq.com": {"RabbitmqCluster"},
}

_created contains obj.metadata.name if {
	some obj in input.objects
	k8s.is(obj, "", "Namespace")
}

# Namespaces whose only tenants are platform controllers installed from their
# upstream charts (the mesh, certificates, secrets, ingress, monitoring,
# operators). The API server's admission webhooks and the charts' own flows
# reach them from node and control-plane addresses no manifest here can name,
# and each chart's own policies (where it ships them) are the upstream's to
# keep; a default deny written here would break admission silently. Every
# namespace SyncBridge's pods or data run in is still required to deny.
chart_owned := {
	"argocd", "cert-manager", "cnpg-system", "external-secrets", "ingress-nginx",
	"linkerd", "monitoring", "rabbitmq-system",
}

_namespaces contains name if {
	some name in _created
	not name in chart_owned
}

_namespaces contains k8s.namespace(obj) if {
	some obj in input.objects
	obj.kind in _pod_creating[k8s.group(obj)]
	k8s.namespace(obj) != "-"
}

# Workloads in a namespace this root does not create (a base without a
# namespace has none to protect yet).
_guests contains t if {
	some t in k8s.templates
	k8s.namespace(t.object) != "-"
	not k8s.namespace(t.object) in _created
}

_network_policies contains np if {
	some np in input.objects
	k8s.is(np, "networking.k8s.io", "NetworkPolicy")
}

# The directions a NetworkPolicy governs: policyTypes, or what the API
# infers when it is unset (Ingress, plus Egress if it has egress rules).
_types(np) := {t | some t in np.spec.policyTypes} if {
	np.spec.policyTypes
} else := {"Ingress", "Egress"} if {
	count(np.spec.egress) > 0
} else := {"Ingress"}

_empty_selector(np) if {
	count(object.get(np.spec.podSelector, "matchLabels", {})) == 0
	count(object.get(np.spec.podSelector, "matchExpressions", [])) == 0
}

# The policy governs `direction` with no rule for it: it denies that
# direction to the pods it selects, unless another policy allows it.
_denies(np, direction) if {
	direction in _types(np)
	count(object.get(np.spec, lower(direction), [])) == 0
}

_denied(namespace, direction) if {
	some np in _network_policies
	k8s.namespace(np) == namespace
	_empty_selector(np)
	_denies(np, direction)
}

# A pod is isolated for a direction once any policy selecting it governs
# that direction: then only what some policy allows passes.
_isolated(t, direction) if {
	some np in _network_policies
	k8s.namespace(np) == k8s.namespace(t.object)
	k8s.selects(np.spec.podSelector, k8s.labels(t.template))
	direction in _types(np)
}

deny contains msg if {
	some namespace in _namespaces
	some direction in ["Ingress", "Egress"]
	not _denied(namespace, direction)
	msg := sprintf("Namespace/-/%s: no default-deny NetworkPolicy for %s; add one in %s with podSelector: {}, policyTypes: [Ingress, Egress] and no rules (then allow each needed flow in its own policy)", [namespace, direction, namespace])
}

deny contains msg if {
	some t in _guests
	some direction in ["Ingress", "Egress"]
	not _isolated(t, direction)
	msg := sprintf("%s: no NetworkPolicy in this root isolates its pods for %s, so until the namespace's own default deny syncs they are open; add one in %s selecting them with policyTypes: [Ingress, Egress] and only the flows they need", [k8s.ref(t.object), direction, k8s.namespace(t.object)])
}

# A rule with no ports that names no peers, or a peer that is every pod of
# every namespace or every address, admits everything.
_allows_everything(rule, peers) if {
	count(object.get(rule, "ports", [])) == 0
	count(object.get(rule, peers, [])) == 0
}

_allows_everything(rule, peers) if {
	count(object.get(rule, "ports", [])) == 0
	some peer in rule[peers]
	_any_peer(peer)
}

_any_peer(peer) if {
	peer.namespaceSelector == {}
	not peer.podSelector
}

_any_peer(peer) if {
	peer.ipBlock.cidr in {"0.0.0.0/0", "::/0"}
	count(object.get(peer.ipBlock, "except", [])) == 0
}

deny contains msg if {
	some np in _network_policies
	some direction, peers in {"ingress": "from", "egress": "to"}
	some i, rule in object.get(np.spec, direction, [])
	_allows_everything(rule, peers)
	msg := sprintf("%s: %s rule %d admits every peer on every port, undoing the default deny; name the peers (%s:) and ports it is for", [k8s.ref(np), direction, i, peers])
}
