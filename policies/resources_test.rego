package syncbridge.resources_test

import data.syncbridge.lib.testing
import data.syncbridge.resources

test_good_fixture_passes if {
	count(resources.deny) == 0 with input as data.fixtures.good
}

test_bad_fixture_breaks_only_this_policy if {
	testing.firing(data.fixtures.bad.resources) == {"resources"}
}

test_bad_fixture_names_each_violation_and_its_fix if {
	resources.deny == {
		`Deployment/harmonyflow-prod/ws-edge: container "ws-edge" requests memory 1Gi above its limit 512Mi; lower the request or raise the limit`,
		`Deployment/harmonyflow-prod/ws-edge: container "ws-edge" sets no resources.limits.cpu; set requests and limits for both cpu and memory`,
		`Deployment/harmonyflow-prod/ws-edge: initContainer "wait" sets no resources.requests.cpu; set requests and limits for both cpu and memory`,
		`Deployment/harmonyflow-prod/ws-edge: initContainer "wait" sets no resources.requests.memory; set requests and limits for both cpu and memory`,
	} with input as data.fixtures.bad.resources
}

_with_resources(r) := testing.root("prod", [testing.workload(
	"Deployment", "app", "n",
	testing.pod_spec([object.union(object.remove(testing.container("app", testing.edge_image), ["resources"]), {"resources": r})]),
)])

# Quantities compare by value, whatever their notation (numbers included).
test_quantities_compare_by_value if {
	count(resources.deny) == 0 with input as _with_resources({"requests": {"cpu": 1, "memory": "1Gi"}, "limits": {"cpu": "1000m", "memory": "1024Mi"}})
}

test_cpu_request_above_limit_is_denied if {
	resources.deny == {`Deployment/n/app: container "app" requests cpu 2 above its limit 1500m; lower the request or raise the limit`} with input as _with_resources({"requests": {"cpu": 2, "memory": "1Gi"}, "limits": {"cpu": "1500m", "memory": "1Gi"}})
}

test_missing_resources_name_all_four_fields if {
	count(resources.deny) == 4 with input as _with_resources({})
}
