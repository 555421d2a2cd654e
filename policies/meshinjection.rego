# Our services run in Linkerd's mesh (mTLS, and the identity session-core's
# authorization trusts): app namespaces carry linkerd.io/inject: enabled, and
# every long-running pod of our images is visibly injected in the root that
# renders it. Jobs and CronJobs may opt out: a proxy keeps a finished Job's pod
# alive unless native sidecars are on, so that choice is the tree's. In
# staging and prod, app namespaces also default to denying inbound traffic
# no Linkerd Server/AuthorizationPolicy admits.
package syncbridge.meshinjection

import data.syncbridge.lib.k8s

_annotation := "linkerd.io/inject"

_app_namespace_prefix := "harmonyflow-"

_namespace_objects := {obj.metadata.name: obj |
	some obj in input.objects
	k8s.is(obj, "", "Namespace")
}

_ours contains t if {
	some t in k8s.templates
	k8s.long_running(t.object)
	k8s.runs_our_image(t.template)
}

# App namespaces: named harmonyflow-<env>, or holding pods of our images.
_app_namespace(name) if startswith(name, _app_namespace_prefix)

_app_namespace(name) if {
	some t in _ours
	k8s.namespace(t.object) == name
}

_injected(obj) if obj.metadata.annotations[_annotation] == "enabled"

deny contains msg if {
	some name, ns in _namespace_objects
	_app_namespace(name)
	not _injected(ns)
	msg := sprintf("%s: app namespace is not in the mesh; annotate it with %s: enabled", [k8s.ref(ns), _annotation])
}

deny contains msg if {
	some t in _ours
	t.template.metadata.annotations[_annotation] == "disabled"
	msg := sprintf("%s: its pod template opts out of the mesh (%s: disabled), so its traffic is neither encrypted nor identified and the mesh authorization refuses it; remove the annotation", [k8s.ref(t.object), _annotation])
}

# The root does not render the workload's Namespace, so injection is not
# visible here unless the pod template asks for it.
deny contains msg if {
	some t in _ours
	k8s.deployed(t.object)
	not _namespace_objects[k8s.namespace(t.object)]
	not _injected(t.template)
	not t.template.metadata.annotations[_annotation] == "disabled"
	msg := sprintf("%s: this root does not render its Namespace, so nothing here puts it in the mesh; annotate spec.template.metadata with %s: enabled", [k8s.ref(t.object), _annotation])
}

# Argo CD Applications that create an app namespace (CreateNamespace=true)
# set its annotations through managedNamespaceMetadata.
deny contains msg if {
	some app in input.objects
	k8s.is(app, "argoproj.io", "Application")
	"CreateNamespace=true" in object.get(app.spec, ["syncPolicy", "syncOptions"], [])
	_app_namespace(app.spec.destination.namespace)
	not app.spec.syncPolicy.managedNamespaceMetadata.annotations[_annotation] == "enabled"
	msg := sprintf("%s: creates app namespace %s outside the mesh; set spec.syncPolicy.managedNamespaceMetadata.annotations %s: enabled", [k8s.ref(app), app.spec.destination.namespace, _annotation])
}

_inbound_annotation := "config.linkerd.io/default-inbound-policy"

_denying_environments := {"staging", "prod"}

deny contains msg if {
	input.environment in _denying_environments
	some name, ns in _namespace_objects
	_app_namespace(name)
	not ns.metadata.annotations[_inbound_annotation] == "deny"
	msg := sprintf("%s: app namespace in %s admits meshed traffic no policy covers; annotate it with %s: deny", [k8s.ref(ns), input.environment, _inbound_annotation])
}

deny contains msg if {
	input.environment in _denying_environments
	some t in _ours
	policy := t.template.metadata.annotations[_inbound_annotation]
	policy != "deny"
	msg := sprintf("%s: its pod template loosens the inbound policy to %s in %s; remove %s from the pod template", [k8s.ref(t.object), policy, input.environment, _inbound_annotation])
}
