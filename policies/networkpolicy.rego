# Default deny: every namespace a root creates (a Namespace object) or puts
# pods in has a NetworkPolicy with an empty podSelector that denies all
# ingress and all egress, so every allowed flow is a rule someone wrote. A
# rule that admits every peer on every port would undo that, so none may.
package syncbridge.networkpolicy

import data.syncbridge.lib.k8s

# Custom resources from which an operator creates pods in their namespace.
_pod_creating := {
	"postgresql.cnpg.io": {"Cluster"},
	"rabbitmq.com": {"RabbitmqCluster"},
	"redis.redis.opstreelabs.in": {"RedisCluster", "Redis", "RedisReplication"},
}

_namespaces contains obj.metadata.name if {
	some obj in input.objects
	k8s.is(obj, "", "Namespace")
}

_namespaces contains k8s.namespace(t.object) if {
	some t in k8s.templates
	k8s.namespace(t.object) != "-"
}

_namespaces contains k8s.namespace(obj) if {
	some obj in input.objects
	obj.kind in _pod_creating[k8s.group(obj)]
	k8s.namespace(obj) != "-"
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

# The namespace has a policy selecting all its pods that governs `direction`
# with no rule for it: nothing in that direction is allowed unless another
# policy allows it.
_denied(namespace, direction) if {
	some np in _network_policies
	k8s.namespace(np) == namespace
	_empty_selector(np)
	direction in _types(np)
	count(object.get(np.spec, lower(direction), [])) == 0
}

deny contains msg if {
	some namespace in _namespaces
	some direction in ["Ingress", "Egress"]
	not _denied(namespace, direction)
	msg := sprintf("Namespace/-/%s: no default-deny NetworkPolicy for %s; add one in %s with podSelector: {}, policyTypes: [Ingress, Egress] and no rules (then allow each needed flow in its own policy)", [namespace, direction, namespace])
}

deny contains msg if {
	some np in _network_policies
	some direction, peers in {"ingress": "from", "egress": "to"}
	some i, rule in object.get(np.spec, direction, [])
	count(object.get(rule, peers, [])) == 0
	count(object.get(rule, "ports", [])) == 0
	msg := sprintf("%s: %s rule %d admits every peer on every port, undoing the default deny; name the peers (%s:) and ports it is for", [k8s.ref(np), direction, i, peers])
}
