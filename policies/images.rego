# Images are pinned by digest in staging and prod: `name@sha256:<64 hex>`,
# no tag, so what runs is exactly what was tested and promoted (a tag can be
# moved; a digest cannot). Dev may use tags, but never `latest` or none.
package syncbridge.images

import data.syncbridge.lib.k8s

_pinned_environments := {"staging", "prod"}

_digest_pinned := `^[a-z0-9]+([._-][a-z0-9]+)*(\.[a-z0-9-]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*@sha256:[0-9a-f]{64}$`

_fix := "give its repository a `digest: sha256:<64 hex>` entry under images: in the overlay's kustomization.yaml, with no newTag"

# The tag of an image reference, if it has one ("a/b:1.0@sha256:..." -> "1.0").
_tag(image) := tag if {
	[_, tag] := regex.find_all_string_submatch_n(`:([^:/]+)$`, split(image, "@")[0], 1)[0]
}

deny contains msg if {
	input.environment in _pinned_environments
	some c in k8s.containers
	not regex.match(_digest_pinned, c.container.image)
	msg := sprintf("%s: %s image %q has %s, but %s needs a digest and no tag; %s", [k8s.ref(c.object), c.label, c.container.image, _why(c.container.image), input.environment, _fix])
}

# Why an image reference is not `name@sha256:<64 hex>`, for messages.
_why(image) := "the mutable tag latest" if {
	_tag(image) == "latest"
} else := sprintf("tag %s", [_tag(image)]) if {
	_tag(image)
} else := "no tag and no digest (an implicit latest)" if {
	not contains(image, "@")
} else := "a digest that is not sha256:<64 hex>"

# A dev image without a digest must at least name a tag other than latest.
_floats(image) if {
	not contains(image, "@")
	not _tag(image)
}

_floats(image) if {
	not contains(image, "@")
	_tag(image) == "latest"
}

deny contains msg if {
	input.environment == "dev"
	some c in k8s.containers
	_floats(c.container.image)
	msg := sprintf("%s: %s image %q has %s, so it floats in dev; %s", [k8s.ref(c.object), c.label, c.container.image, _why(c.container.image), _fix])
}
