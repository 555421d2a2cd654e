package syncbridge.podsecurity_test

import data.syncbridge.lib.testing
import data.syncbridge.podsecurity

test_good_fixture_passes if {
	count(podsecurity.deny) == 0 with input as data.fixtures.good
}

test_bad_fixture_breaks_only_this_policy if {
	testing.firing(data.fixtures.bad.podsecurity) == {"podsecurity"}
}

test_bad_fixture_names_each_violation_and_its_fix if {
	podsecurity.deny == {
		`CronJob/harmonyflow-prod/cleanup: container "cleanup" may run as root; set securityContext.runAsNonRoot: true on the pod (or the container)`,
		`CronJob/harmonyflow-prod/cleanup: container "cleanup" runs as uid the image's default, not 65532; set securityContext.runAsUser: 65532 on the pod (the images' nonroot user)`,
		`CronJob/harmonyflow-prod/cleanup: container "cleanup" has no RuntimeDefault seccomp profile; set securityContext.seccompProfile.type: RuntimeDefault on the pod`,
		`CronJob/harmonyflow-prod/cleanup: container "cleanup" has a writable root filesystem; set securityContext.readOnlyRootFilesystem: true and mount an emptyDir where it must write (e.g. /tmp)`,
		`CronJob/harmonyflow-prod/cleanup: container "cleanup" keeps the runtime's default Linux capabilities; set securityContext.capabilities.drop: [ALL]`,
		`CronJob/harmonyflow-prod/cleanup: container "cleanup" may gain privileges (setuid binaries); set securityContext.allowPrivilegeEscalation: false`,
		`Deployment/harmonyflow-prod/ws-edge: container "ws-edge" adds capability NET_ADMIN; remove it from securityContext.capabilities.add (only NET_BIND_SERVICE is allowed)`,
		`Deployment/harmonyflow-prod/ws-edge: container "ws-edge" binds hostPort 80 on the node; remove hostPort and reach it through a Service`,
		`Deployment/harmonyflow-prod/ws-edge: container "ws-edge" has a writable root filesystem; set securityContext.readOnlyRootFilesystem: true and mount an emptyDir where it must write (e.g. /tmp)`,
		`Deployment/harmonyflow-prod/ws-edge: container "ws-edge" has no RuntimeDefault seccomp profile; set securityContext.seccompProfile.type: RuntimeDefault on the pod`,
		`Deployment/harmonyflow-prod/ws-edge: container "ws-edge" is privileged; remove securityContext.privileged`,
		`Deployment/harmonyflow-prod/ws-edge: container "ws-edge" keeps the runtime's default Linux capabilities; set securityContext.capabilities.drop: [ALL]`,
		`Deployment/harmonyflow-prod/ws-edge: container "ws-edge" may gain privileges (setuid binaries); set securityContext.allowPrivilegeEscalation: false`,
		`Deployment/harmonyflow-prod/ws-edge: container "ws-edge" may run as root; set securityContext.runAsNonRoot: true on the pod (or the container)`,
		`Deployment/harmonyflow-prod/ws-edge: container "ws-edge" runs as uid 0, not 65532; set securityContext.runAsUser: 65532 on the pod (the images' nonroot user)`,
		`Deployment/harmonyflow-prod/ws-edge: initContainer "wait" has a writable root filesystem; set securityContext.readOnlyRootFilesystem: true and mount an emptyDir where it must write (e.g. /tmp)`,
		`Deployment/harmonyflow-prod/ws-edge: initContainer "wait" keeps the runtime's default Linux capabilities; set securityContext.capabilities.drop: [ALL]`,
		`Deployment/harmonyflow-prod/ws-edge: initContainer "wait" may gain privileges (setuid binaries); set securityContext.allowPrivilegeEscalation: false`,
		`Deployment/harmonyflow-prod/ws-edge: the pod shares the node's namespaces (hostNetwork: true); remove hostNetwork`,
		`Deployment/harmonyflow-prod/ws-edge: volume "node" mounts the node's /var/run; use an emptyDir, ConfigMap, Secret or PersistentVolumeClaim instead`,
	} with input as data.fixtures.bad.podsecurity
}

# The container's own securityContext is enough when the pod sets none.
test_container_level_settings_suffice if {
	c := object.union(testing.container("app", testing.edge_image), {"securityContext": {
		"runAsNonRoot": true, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"},
	}})
	count(podsecurity.deny) == 0 with input as testing.root("prod", [testing.workload("Deployment", "app", "n", {"containers": [c]})])
}

# Every kind of pod template is read, including a bare Pod.
test_every_pod_template_kind_is_checked if {
	bare := {"securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}}, "containers": [{"name": "app", "image": testing.edge_image}]}
	objects := [testing.workload(kind, lower(kind), "n", bare) | some kind in ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"]]
	pod := {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pod", "namespace": "n"}, "spec": bare}
	denied := podsecurity.deny with input as testing.root("prod", array.concat(objects, [pod]))
	{split(msg, ":")[0] | some msg in denied} == {
		"Deployment/n/deployment", "StatefulSet/n/statefulset", "DaemonSet/n/daemonset",
		"ReplicaSet/n/replicaset", "Job/n/job", "Pod/n/pod",
	}
}

# A Deployment-shaped custom resource is not a pod template.
test_other_api_groups_are_not_workloads if {
	obj := object.union(testing.workload("Deployment", "app", "n", {"containers": [{"name": "app", "image": "x"}]}), {"apiVersion": "example.com/v1"})
	count(podsecurity.deny) == 0 with input as testing.root("prod", [obj])
}

test_only_net_bind_service_may_be_added if {
	c := object.union(testing.container("app", testing.edge_image), {"securityContext": {"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}})
	count(podsecurity.deny) == 0 with input as testing.root("prod", [testing.workload("Deployment", "app", "n", testing.pod_spec([c]))])
}
