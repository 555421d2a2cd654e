# Builders for the policies' unit tests: compliant containers, pod specs,
# workloads and roots that a test bends in one place (object.union) to show
# one rule firing or holding. Used only by *_test.rego files.
package syncbridge.lib.testing

edge_image := "registry.harmonyflow.io/syncbridge/ws-edge@sha256:ecfa15430b13f1d7a7bc9e1b73b3104a9448387a903eb5f9df9b7a9a62b3f790"

core_image := "registry.harmonyflow.io/syncbridge/session-core@sha256:a4f1f01f418aa89ea1d2b53f80a7abc8057e5cba4977d6f508dc8cfeb03516f8"

# A container every container-level policy accepts, serving HTTP on 8080.
container(name, image) := {
	"name": name,
	"image": image,
	"ports": [{"name": "http", "containerPort": 8080}],
	"securityContext": {
		"readOnlyRootFilesystem": true,
		"allowPrivilegeEscalation": false,
		"capabilities": {"drop": ["ALL"]},
	},
	"resources": {
		"requests": {"cpu": "250m", "memory": "512Mi"},
		"limits": {"cpu": "1", "memory": "768Mi"},
	},
	"readinessProbe": {"httpGet": {"path": "/health/ready", "port": "http"}},
	"livenessProbe": {"httpGet": {"path": "/health/live", "port": "http"}},
}

# A pod spec with the restricted pod-level securityContext.
pod_spec(containers) := {
	"securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
	"containers": containers,
}

# A workload of `kind` whose pods carry app.kubernetes.io/name: <name>.
workload(kind, name, namespace, spec) := {
	"apiVersion": _api_versions[kind],
	"kind": kind,
	"metadata": {"name": name, "namespace": namespace},
	"spec": {
		"selector": {"matchLabels": {"app.kubernetes.io/name": name}},
		"template": {"metadata": {"labels": {"app.kubernetes.io/name": name}}, "spec": spec},
	},
}

_api_versions := {
	"Deployment": "apps/v1",
	"StatefulSet": "apps/v1",
	"DaemonSet": "apps/v1",
	"ReplicaSet": "apps/v1",
	"Job": "batch/v1",
}

# One rendered root.
root(environment, objects) := {"root": "test", "environment": environment, "objects": objects}

# The syncbridge packages whose deny set is not empty for this input.
firing(doc) := {name |
	some name
	denied := data.syncbridge[name].deny with input as doc
	count(denied) > 0
}

# Every policy package (those that define deny).
policies := {name |
	some name
	data.syncbridge[name].deny
}
