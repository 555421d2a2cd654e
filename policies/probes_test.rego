package syncbridge.probes_test

import data.syncbridge.lib.testing
import data.syncbridge.probes

test_good_fixture_passes if {
	count(probes.deny) == 0 with input as data.fixtures.good
}

test_bad_fixture_breaks_only_this_policy if {
	testing.firing(data.fixtures.bad.probes) == {"probes"}
}

test_bad_fixture_names_each_violation_and_its_fix if {
	probes.deny == {
		`Deployment/harmonyflow-prod/session-core: container "session-core"'s livenessProbe targets port "health", which the container does not declare; name a port in its ports or use the number`,
		`Deployment/harmonyflow-prod/session-core: container "session-core"'s readinessProbe neither calls HTTP nor gRPC; probe the service's own health endpoint with httpGet or grpc instead of exec/tcpSocket`,
		`Deployment/harmonyflow-prod/ws-edge: container "ws-edge" delays its livenessProbe by initialDelaySeconds; add a startupProbe on the same endpoint and drop the delay`,
		`Deployment/harmonyflow-prod/ws-edge: container "ws-edge" has no readinessProbe; add one (httpGet on /health/* or the gRPC health service)`,
		`Deployment/harmonyflow-prod/ws-edge: container "ws-edge"'s livenessProbe neither calls HTTP nor gRPC; probe the service's own health endpoint with httpGet or grpc instead of exec/tcpSocket`,
	} with input as data.fixtures.bad.probes
}

_unprobed := {"name": "app", "image": testing.edge_image}

# Jobs run to completion and initContainers exit: neither is probed.
test_jobs_and_init_containers_need_no_probes if {
	job := testing.workload("Job", "migrate", "n", {"containers": [_unprobed]})
	deployment := testing.workload("Deployment", "app", "n", {"initContainers": [_unprobed], "containers": [testing.container("app", testing.edge_image)]})
	count(probes.deny) == 0 with input as testing.root("prod", [job, deployment])
}

test_statefulsets_daemonsets_and_pods_are_probed if {
	objects := [
		testing.workload("StatefulSet", "a", "n", {"containers": [_unprobed]}),
		testing.workload("DaemonSet", "b", "n", {"containers": [_unprobed]}),
		{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "c", "namespace": "n"}, "spec": {"containers": [_unprobed]}},
	]
	count(probes.deny) == 6 with input as testing.root("prod", objects)
}

# A startup probe makes a delayed liveness probe acceptable.
test_delayed_liveness_with_startup_probe_passes if {
	c := object.union(testing.container("app", testing.edge_image), {
		"startupProbe": {"grpc": {"port": 50051}},
		"livenessProbe": {"httpGet": {"path": "/health/live", "port": 8080}, "initialDelaySeconds": 5},
	})
	count(probes.deny) == 0 with input as testing.root("prod", [testing.workload("Deployment", "app", "n", {"containers": [c]})])
}
