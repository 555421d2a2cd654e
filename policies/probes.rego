# Every container of a long-running pod (not Jobs or CronJobs, which run to
# completion) has a readiness and a liveness probe over HTTP or gRPC, and uses
# a startupProbe rather than delaying liveness for slow starts.
package syncbridge.probes

import data.syncbridge.lib.k8s

_serving(c) if {
	c.field == "containers"
	k8s.long_running(c.object)
}

deny contains msg if {
	some c in k8s.containers
	_serving(c)
	some probe in ["readinessProbe", "livenessProbe"]
	not c.container[probe]
	msg := sprintf("%s: %s has no %s; add one (httpGet on /health/* or the gRPC health service)", [k8s.ref(c.object), c.label, probe])
}

deny contains msg if {
	some c in k8s.containers
	_serving(c)
	some probe in ["readinessProbe", "livenessProbe", "startupProbe"]
	handler := c.container[probe]
	not handler.httpGet
	not handler.grpc
	msg := sprintf("%s: %s's %s neither calls HTTP nor gRPC; probe the service's own health endpoint with httpGet or grpc instead of exec/tcpSocket", [k8s.ref(c.object), c.label, probe])
}

# initialDelaySeconds on liveness is a guess that is either too long (a hung
# pod lives on) or too short (a slow start is killed); a startup probe holds
# liveness off exactly until the process is up.
deny contains msg if {
	some c in k8s.containers
	_serving(c)
	c.container.livenessProbe.initialDelaySeconds > 0
	not c.container.startupProbe
	msg := sprintf("%s: %s delays its livenessProbe by initialDelaySeconds; add a startupProbe on the same endpoint and drop the delay", [k8s.ref(c.object), c.label])
}

# A probe on a named port the container does not declare fails forever.
deny contains msg if {
	some c in k8s.containers
	_serving(c)
	some probe in ["readinessProbe", "livenessProbe", "startupProbe"]
	port := c.container[probe].httpGet.port
	is_string(port)
	not port in {p.name | some p in object.get(c.container, "ports", [])}
	msg := sprintf("%s: %s's %s targets port %q, which the container does not declare; name a port in its ports or use the number", [k8s.ref(c.object), c.label, probe, port])
}
