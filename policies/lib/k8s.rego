# The vocabulary every syncbridge policy shares: how an object is named in a
# message, which objects carry pod templates, their containers, our images,
# label selectors and the autoscalers that own a workload's replica count.
# It reads `input` (one rendered root, see ../README.md) and denies nothing.
package syncbridge.lib.k8s

# "<Kind>/<namespace>/<name>", how every message starts; "-" stands for no
# namespace (cluster-scoped objects, or a base rendered without one).
ref(obj) := sprintf("%s/%s/%s", [obj.kind, namespace(obj), obj.metadata.name])

namespace(obj) := object.get(obj, ["metadata", "namespace"], "-")

# The API group of an object ("" for the core group), from its apiVersion.
group(obj) := g if {
	parts := split(obj.apiVersion, "/")
	count(parts) == 2
	g := parts[0]
} else := ""

is(obj, api_group, kind) if {
	obj.kind == kind
	group(obj) == api_group
}

# Kinds whose spec.template is a pod template, by API group.
_template_kinds := {
	"apps": {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"},
	"batch": {"Job"},
}

# Every pod template the root renders, with the object that owns it:
# {"object": <the workload>, "template": {"metadata": ..., "spec": ...}}.
templates contains {"object": obj, "template": obj.spec.template} if {
	some obj in input.objects
	obj.kind in _template_kinds[group(obj)]
}

templates contains {"object": obj, "template": obj.spec.jobTemplate.spec.template} if {
	some obj in input.objects
	is(obj, "batch", "CronJob")
}

templates contains {"object": obj, "template": {"metadata": object.get(obj, "metadata", {}), "spec": obj.spec}} if {
	some obj in input.objects
	is(obj, "", "Pod")
}

# An object as it will be deployed: it has a namespace, or its root belongs
# to an environment. A base (neither) is composed further by overlays, which
# add what depends on the deployment (mesh, authorization, network policy).
deployed(obj) if namespace(obj) != "-"

deployed(_) if input.environment != null

# Pods that run until stopped (probes, mesh injection and PDBs apply to them),
# as opposed to Jobs and CronJobs that run to completion.
long_running(obj) if obj.kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Pod"}

# Every container of every pod template: {"object", "template", "container",
# "field", "label"}; field is "containers" or "initContainers", label names it
# in messages (`container "x"` / `initContainer "x"`).
containers contains {"object": t.object, "template": t.template, "container": c, "field": field, "label": sprintf("%s %q", [kind, c.name])} if {
	some t in templates
	some field, kind in {"containers": "container", "initContainers": "initContainer"}
	some c in object.get(t.template.spec, field, [])
}

# Labels of a pod template (empty when it has none).
labels(template) := object.get(template, ["metadata", "labels"], {})

# A Kubernetes label selector (matchLabels + matchExpressions) selects these
# labels. An empty selector selects everything, as the API defines it.
selects(selector, pod_labels) if {
	every key, value in object.get(selector, "matchLabels", {}) {
		pod_labels[key] == value
	}
	every expr in object.get(selector, "matchExpressions", []) {
		_expression_matches(expr, pod_labels)
	}
}

_expression_matches(expr, pod_labels) if {
	expr.operator == "In"
	pod_labels[expr.key] in expr.values
}

_expression_matches(expr, pod_labels) if {
	expr.operator == "NotIn"
	not _has_value(pod_labels, expr.key, expr.values)
}

_has_value(pod_labels, key, values) if pod_labels[key] in values

_expression_matches(expr, pod_labels) if {
	expr.operator == "Exists"
	expr.key in object.keys(pod_labels)
}

_expression_matches(expr, pod_labels) if {
	expr.operator == "DoesNotExist"
	not expr.key in object.keys(pod_labels)
}

# The repository of an image reference, without tag or digest
# ("reg:5000/a/b:1.0@sha256:..." -> "reg:5000/a/b").
image_repository(image) := regex.replace(split(image, "@")[0], `:[^:/]+$`, "")

# The images this repository builds (gitops contract); promotion rewrites
# exactly these names' digests.
edge_image := "registry.harmonyflow.io/syncbridge/ws-edge"

core_image := "registry.harmonyflow.io/syncbridge/session-core"

our_images := {edge_image, core_image}

# A pod template runs one of our images.
runs_our_image(template) if {
	some field in ["containers", "initContainers"]
	some c in object.get(template.spec, field, [])
	image_repository(c.image) in our_images
}

# Autoscalers and the workload they own: {"object", "namespace", "kind",
# "name", "min"}. An HPA's minReplicas defaults to 1; a KEDA ScaledObject
# (which creates an HPA) targets a Deployment unless told otherwise and its
# minReplicaCount defaults to 0.
scalers contains {
	"object": hpa,
	"namespace": namespace(hpa),
	"kind": hpa.spec.scaleTargetRef.kind,
	"name": hpa.spec.scaleTargetRef.name,
	"min": object.get(hpa.spec, "minReplicas", 1),
} if {
	some hpa in input.objects
	is(hpa, "autoscaling", "HorizontalPodAutoscaler")
}

scalers contains {
	"object": so,
	"namespace": namespace(so),
	"kind": object.get(so.spec.scaleTargetRef, "kind", "Deployment"),
	"name": so.spec.scaleTargetRef.name,
	"min": object.get(so.spec, "minReplicaCount", 0),
} if {
	some so in input.objects
	is(so, "keda.sh", "ScaledObject")
}

# The autoscalers that own this workload's replica count.
scalers_of(obj) := {s |
	some s in scalers
	s.namespace == namespace(obj)
	s.kind == obj.kind
	s.name == obj.metadata.name
}
