# Restricted pod security (Kubernetes' "restricted" profile plus our uid) for
# every container and initContainer of every pod template a root renders:
# Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs, Pods.
# Pods that Helm charts of infrastructure Applications create are not in the
# render; see README.md for how those are treated.
package syncbridge.podsecurity

import data.syncbridge.lib.k8s

# The nonroot user of the images this repository builds (tests/images).
uid := 65532

# A securityContext field as the kubelet applies it: the container's value,
# else the pod's.
effective(c, field) := value if {
	value := c.container.securityContext[field]
} else := value if {
	value := c.template.spec.securityContext[field]
}

# Predicates rather than `not effective(...) == x`: negating a comparison
# with an undefined function result is itself undefined, not true.
_non_root(c) if effective(c, "runAsNonRoot") == true

_runs_as_our_uid(c) if effective(c, "runAsUser") == uid

_runtime_default_seccomp(c) if effective(c, "seccompProfile").type == "RuntimeDefault"

# The uid a container runs as, for messages ("the image's" when unset).
_uid_shown(c) := sprintf("%v", [effective(c, "runAsUser")]) if {
	effective(c, "runAsUser")
} else := "the image's default"

deny contains msg if {
	some c in k8s.containers
	not _non_root(c)
	msg := sprintf("%s: %s may run as root; set securityContext.runAsNonRoot: true on the pod (or the container)", [k8s.ref(c.object), c.label])
}

deny contains msg if {
	some c in k8s.containers
	not _runs_as_our_uid(c)
	msg := sprintf("%s: %s runs as uid %s, not %d; set securityContext.runAsUser: %d on the pod (the images' nonroot user)", [k8s.ref(c.object), c.label, _uid_shown(c), uid, uid])
}

deny contains msg if {
	some c in k8s.containers
	not _runtime_default_seccomp(c)
	msg := sprintf("%s: %s has no RuntimeDefault seccomp profile; set securityContext.seccompProfile.type: RuntimeDefault on the pod", [k8s.ref(c.object), c.label])
}

deny contains msg if {
	some c in k8s.containers
	not c.container.securityContext.readOnlyRootFilesystem == true
	msg := sprintf("%s: %s has a writable root filesystem; set securityContext.readOnlyRootFilesystem: true and mount an emptyDir where it must write (e.g. /tmp)", [k8s.ref(c.object), c.label])
}

deny contains msg if {
	some c in k8s.containers
	not c.container.securityContext.allowPrivilegeEscalation == false
	msg := sprintf("%s: %s may gain privileges (setuid binaries); set securityContext.allowPrivilegeEscalation: false", [k8s.ref(c.object), c.label])
}

deny contains msg if {
	some c in k8s.containers
	not "ALL" in object.get(c.container, ["securityContext", "capabilities", "drop"], [])
	msg := sprintf("%s: %s keeps the runtime's default Linux capabilities; set securityContext.capabilities.drop: [ALL]", [k8s.ref(c.object), c.label])
}

deny contains msg if {
	some c in k8s.containers
	some capability in object.get(c.container, ["securityContext", "capabilities", "add"], [])
	capability != "NET_BIND_SERVICE"
	msg := sprintf("%s: %s adds capability %s; remove it from securityContext.capabilities.add (only NET_BIND_SERVICE is allowed)", [k8s.ref(c.object), c.label, capability])
}

deny contains msg if {
	some c in k8s.containers
	c.container.securityContext.privileged == true
	msg := sprintf("%s: %s is privileged; remove securityContext.privileged", [k8s.ref(c.object), c.label])
}

deny contains msg if {
	some c in k8s.containers
	some port in object.get(c.container, "ports", [])
	port.hostPort
	msg := sprintf("%s: %s binds hostPort %d on the node; remove hostPort and reach it through a Service", [k8s.ref(c.object), c.label, port.hostPort])
}

deny contains msg if {
	some t in k8s.templates
	some field in ["hostNetwork", "hostPID", "hostIPC"]
	t.template.spec[field] == true
	msg := sprintf("%s: the pod shares the node's namespaces (%s: true); remove %s", [k8s.ref(t.object), field, field])
}

deny contains msg if {
	some t in k8s.templates
	some volume in object.get(t.template.spec, "volumes", [])
	volume.hostPath
	msg := sprintf("%s: volume %q mounts the node's %s; use an emptyDir, ConfigMap, Secret or PersistentVolumeClaim instead", [k8s.ref(t.object), volume.name, volume.hostPath.path])
}
