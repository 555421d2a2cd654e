package syncbridge.meshinjection_test

import data.syncbridge.lib.testing
import data.syncbridge.meshinjection

test_good_fixture_passes if {
	count(meshinjection.deny) == 0 with input as data.fixtures.good
}

test_bad_fixture_breaks_only_this_policy if {
	testing.firing(data.fixtures.bad.meshinjection) == {"meshinjection"}
}

test_bad_fixture_names_each_violation_and_its_fix if {
	meshinjection.deny == {
		"Application/argocd/apps-dev: creates app namespace harmonyflow-dev outside the mesh; set spec.syncPolicy.managedNamespaceMetadata.annotations linkerd.io/inject: enabled",
		"Deployment/harmonyflow-prod/session-core: its pod template opts out of the mesh (linkerd.io/inject: disabled), so its traffic is neither encrypted nor identified and the mesh authorization refuses it; remove the annotation",
		"Deployment/harmonyflow-staging/ws-edge: this root does not render its Namespace, so nothing here puts it in the mesh; annotate spec.template.metadata with linkerd.io/inject: enabled",
		"Namespace/-/harmonyflow-prod: app namespace is not in the mesh; annotate it with linkerd.io/inject: enabled",
		"Namespace/-/harmonyflow-prod: app namespace in prod admits meshed traffic no policy covers; annotate it with config.linkerd.io/default-inbound-policy: deny",
		"Deployment/harmonyflow-staging/ws-edge: its pod template loosens the inbound policy to all-unauthenticated in prod; remove config.linkerd.io/default-inbound-policy from the pod template",
	} with input as data.fixtures.bad.meshinjection
}

_namespace(name, annotations) := {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "annotations": annotations}}

_edge(namespace) := testing.workload("Deployment", "ws-edge", namespace, {"containers": [{"name": "ws-edge", "image": testing.edge_image}]})

# An injected Namespace in the root covers the pods in it.
test_injected_namespace_covers_its_pods if {
	count(meshinjection.deny) == 0 with input as testing.root("dev", [_namespace("apps", {"linkerd.io/inject": "enabled"}), _edge("apps")])
}

# Any namespace holding our pods is an app namespace, whatever its name.
test_namespace_of_our_pods_must_be_injected if {
	meshinjection.deny == {"Namespace/-/apps: app namespace is not in the mesh; annotate it with linkerd.io/inject: enabled"} with input as testing.root("dev", [_namespace("apps", {}), _edge("apps")])
}

test_infrastructure_namespaces_and_pods_are_left_alone if {
	other := testing.workload("Deployment", "exporter", "monitoring", {"containers": [{"name": "x", "image": "quay.example/exporter:1"}]})
	count(meshinjection.deny) == 0 with input as testing.root("prod", [_namespace("monitoring", {}), other])
}

# A proxy would keep a finished Job's pod alive; Jobs may opt out.
test_jobs_may_opt_out if {
	job := testing.workload("Job", "migrate", "harmonyflow-prod", {"containers": [{"name": "m", "image": testing.core_image}]})
	opted_out := json.patch(job, [{"op": "add", "path": "/spec/template/metadata/annotations", "value": {"linkerd.io/inject": "disabled"}}])
	count(meshinjection.deny) == 0 with input as testing.root("prod", [opted_out])
}

test_application_with_managed_namespace_annotation_passes if {
	app := {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": "a", "namespace": "argocd"}, "spec": {
		"project": "syncbridge",
		"destination": {"namespace": "harmonyflow-dev"},
		"syncPolicy": {"syncOptions": ["CreateNamespace=true"], "managedNamespaceMetadata": {"annotations": {"linkerd.io/inject": "enabled"}}},
	}}
	count(meshinjection.deny) == 0 with input as testing.root("dev", [app])
}

test_bases_are_left_to_their_overlays if {
	base := json.remove(_edge("x"), ["metadata/namespace"])
	count(meshinjection.deny) == 0 with input as testing.root(null, [base])
	count(meshinjection.deny) == 1 with input as testing.root("dev", [base])
}

# Staging and prod deny inbound traffic no Server/AuthorizationPolicy admits.
test_inbound_default_deny_only_in_staging_and_prod if {
	injected := _namespace("harmonyflow-x", {"linkerd.io/inject": "enabled"})
	count(meshinjection.deny) == 0 with input as testing.root("dev", [injected])
	count(meshinjection.deny) == 1 with input as testing.root("staging", [injected])
	denying := _namespace("harmonyflow-x", {"linkerd.io/inject": "enabled", "config.linkerd.io/default-inbound-policy": "deny"})
	count(meshinjection.deny) == 0 with input as testing.root("prod", [denying])
}
