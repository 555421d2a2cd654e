# A fixture policy: every object carries app.kubernetes.io/name.
package syncbridge.labels

deny contains msg if {
	some obj in input.objects
	not obj.metadata.labels["app.kubernetes.io/name"]
	msg := sprintf("%s/%s/%s: set metadata.labels[\"app.kubernetes.io/name\"]", [
		obj.kind,
		object.get(obj, ["metadata", "namespace"], "-"),
		obj.metadata.name,
	])
}

# Environment-aware, like the real digest policy: staging must pin digests.
deny contains msg if {
	input.environment == "staging"
	some obj in input.objects
	obj.kind == "Deployment"
	some c in obj.spec.template.spec.containers
	not contains(c.image, "@sha256:")
	msg := sprintf("%s/%s/%s: pin %s by digest", [obj.kind, obj.metadata.namespace, obj.metadata.name, c.name])
}
