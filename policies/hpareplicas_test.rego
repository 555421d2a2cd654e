package syncbridge.hpareplicas_test

import data.syncbridge.hpareplicas
import data.syncbridge.lib.testing

test_good_fixture_passes if {
	count(hpareplicas.deny) == 0 with input as data.fixtures.good
}

test_bad_fixture_breaks_only_this_policy if {
	testing.firing(data.fixtures.bad.hpareplicas) == {"hpareplicas"}
}

test_bad_fixture_names_each_violation_and_its_fix if {
	hpareplicas.deny == {`Deployment/harmonyflow-prod/ws-edge: sets spec.replicas: 3 while HorizontalPodAutoscaler/harmonyflow-prod/ws-edge owns its replica count; remove spec.replicas from the manifest (and let Argo CD's ignoreDifferences cover the live field)`} with input as data.fixtures.bad.hpareplicas
}

_app(kind) := object.union(testing.workload(kind, "app", "n", {"containers": []}), {"spec": {"replicas": 2}})

_hpa(kind, namespace) := {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "app", "namespace": namespace}, "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": kind, "name": "app"}, "maxReplicas": 4}}

test_keda_scaled_object_owns_replicas_too if {
	scaled := {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "app", "namespace": "n"}, "spec": {"scaleTargetRef": {"name": "app"}}}
	hpareplicas.deny == {`Deployment/n/app: sets spec.replicas: 2 while ScaledObject/n/app owns its replica count; remove spec.replicas from the manifest (and let Argo CD's ignoreDifferences cover the live field)`} with input as testing.root("prod", [_app("Deployment"), scaled])
}

test_statefulset_target_is_matched_by_kind if {
	count(hpareplicas.deny) == 1 with input as testing.root("prod", [_app("StatefulSet"), _hpa("StatefulSet", "n")])
	count(hpareplicas.deny) == 0 with input as testing.root("prod", [_app("StatefulSet"), _hpa("Deployment", "n")])
}

test_autoscaler_in_another_namespace_does_not_own_it if {
	count(hpareplicas.deny) == 0 with input as testing.root("prod", [_app("Deployment"), _hpa("Deployment", "other")])
}
