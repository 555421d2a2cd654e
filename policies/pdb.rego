# Every workload that runs more than one replica (spec.replicas > 1, or an
# autoscaler whose minimum is above 1) has a PodDisruptionBudget selecting its
# pods, and that budget lets at least one pod be evicted, so node drains and
# cluster upgrades neither take the service down nor hang.
package syncbridge.pdb

import data.syncbridge.lib.k8s

_replicated_kinds := {"Deployment", "StatefulSet", "ReplicaSet"}

_multi_replica contains t if {
	some t in k8s.templates
	t.object.kind in _replicated_kinds
	_replicas(t.object) > 1
}

# The replicas a workload runs at its lowest: its autoscaler's minimum when
# one owns it, else spec.replicas (default 1).
_replicas(obj) := max({s.min | some s in k8s.scalers_of(obj)}) if {
	count(k8s.scalers_of(obj)) > 0
} else := object.get(obj.spec, "replicas", 1)

_budgets(t) := {pdb |
	some pdb in input.objects
	k8s.is(pdb, "policy", "PodDisruptionBudget")
	k8s.namespace(pdb) == k8s.namespace(t.object)
	k8s.selects(pdb.spec.selector, k8s.labels(t.template))
}

deny contains msg if {
	some t in _multi_replica
	count(_budgets(t)) == 0
	msg := sprintf("%s: runs at least %d replicas but no PodDisruptionBudget selects its pods; add one in namespace %s whose selector matches the pod template's labels (e.g. minAvailable: %d)", [k8s.ref(t.object), _replicas(t.object), k8s.namespace(t.object), _replicas(t.object) - 1])
}

# A budget that allows no eviction at the workload's lowest replica count
# blocks every drain instead of pacing it.
deny contains msg if {
	some t in _multi_replica
	some pdb in _budgets(t)
	_blocks(pdb.spec, _replicas(t.object))
	msg := sprintf("%s: allows no voluntary eviction of %s at its %d replicas, so node drains hang; lower minAvailable below %d or set maxUnavailable to at least 1", [k8s.ref(pdb), k8s.ref(t.object), _replicas(t.object), _replicas(t.object)])
}

_blocks(spec, replicas) if {
	is_number(spec.minAvailable)
	spec.minAvailable >= replicas
}

# A percentage of minAvailable is rounded up, as the disruption controller does.
_blocks(spec, replicas) if {
	is_string(spec.minAvailable)
	endswith(spec.minAvailable, "%")
	percent := to_number(trim_suffix(spec.minAvailable, "%"))
	ceil((percent * replicas) / 100) >= replicas
}

_blocks(spec, _) if spec.maxUnavailable in {0, "0%"}
