# Every container and initContainer of every pod template sets requests and
# limits for cpu and memory: requests are what the scheduler and the HPA's
# utilisation targets count, limits bound a runaway pod's damage to its node.
package syncbridge.resources

import data.syncbridge.lib.k8s

_fields := [["requests", "cpu"], ["requests", "memory"], ["limits", "cpu"], ["limits", "memory"]]

deny contains msg if {
	some c in k8s.containers
	some field in _fields
	not c.container.resources[field[0]][field[1]]
	msg := sprintf("%s: %s sets no resources.%s.%s; set requests and limits for both cpu and memory", [k8s.ref(c.object), c.label, field[0], field[1]])
}

# Requests above limits are rejected by the API server at sync time; say so
# at review time instead.
deny contains msg if {
	some c in k8s.containers
	request := c.container.resources.requests.cpu
	limit := c.container.resources.limits.cpu
	units.parse(sprintf("%v", [request])) > units.parse(sprintf("%v", [limit]))
	msg := sprintf("%s: %s requests cpu %v above its limit %v; lower the request or raise the limit", [k8s.ref(c.object), c.label, request, limit])
}

deny contains msg if {
	some c in k8s.containers
	request := c.container.resources.requests.memory
	limit := c.container.resources.limits.memory
	units.parse_bytes(sprintf("%v", [request])) > units.parse_bytes(sprintf("%v", [limit]))
	msg := sprintf("%s: %s requests memory %v above its limit %v; lower the request or raise the limit", [k8s.ref(c.object), c.label, request, limit])
}
