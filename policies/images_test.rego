package syncbridge.images_test

import data.syncbridge.images
import data.syncbridge.lib.testing

test_good_fixture_passes if {
	count(images.deny) == 0 with input as data.fixtures.good
}

test_bad_fixture_breaks_only_this_policy if {
	testing.firing(data.fixtures.bad.images) == {"images"}
}

_fix := "give its repository a `digest: sha256:<64 hex>` entry under images: in the overlay's kustomization.yaml, with no newTag"

test_bad_fixture_names_each_violation_and_its_fix if {
	images.deny == {
		sprintf(`Deployment/harmonyflow-staging/ws-edge: container "sidecar" image "registry.harmonyflow.io/syncbridge/session-core:latest" has the mutable tag latest, but staging needs a digest and no tag; %s`, [_fix]),
		sprintf(`Deployment/harmonyflow-staging/ws-edge: container "tagged" image "registry.harmonyflow.io/syncbridge/session-core:1.4.2@sha256:a4f1f01f418aa89ea1d2b53f80a7abc8057e5cba4977d6f508dc8cfeb03516f8" has tag 1.4.2, but staging needs a digest and no tag; %s`, [_fix]),
		sprintf(`Deployment/harmonyflow-staging/ws-edge: container "ws-edge" image "registry.harmonyflow.io/syncbridge/ws-edge:1.4.2" has tag 1.4.2, but staging needs a digest and no tag; %s`, [_fix]),
		sprintf(`Deployment/harmonyflow-staging/ws-edge: initContainer "wait" image "registry.harmonyflow.io/syncbridge/ws-edge" has no tag and no digest (an implicit latest), but staging needs a digest and no tag; %s`, [_fix]),
	} with input as data.fixtures.bad.images
}

_root(environment, image) := testing.root(environment, [testing.workload("Deployment", "app", "n", {"containers": [{"name": "app", "image": image}]})])

_digest := "sha256:ecfa15430b13f1d7a7bc9e1b73b3104a9448387a903eb5f9df9b7a9a62b3f790"

test_registry_with_port_and_digest_passes_in_prod if {
	count(images.deny) == 0 with input as _root("prod", sprintf("registry.local:5000/team/app@%s", [_digest]))
}

test_short_or_uppercase_digest_is_denied if {
	count(images.deny) == 1 with input as _root("prod", "registry.local/app@sha256:abc")
	count(images.deny) == 1 with input as _root("prod", sprintf("registry.local/app@%s", [upper(_digest)]))
}

test_dev_accepts_a_tag_but_not_latest_or_none if {
	count(images.deny) == 0 with input as _root("dev", "registry.local/app:1.4.2")
	count(images.deny) == 1 with input as _root("dev", "registry.local/app:latest")
	count(images.deny) == 1 with input as _root("dev", "registry.local:5000/app")
}

# Bases (no environment) name bare repositories for overlays to pin.
test_bases_are_not_checked if {
	count(images.deny) == 0 with input as _root(null, "registry.harmonyflow.io/syncbridge/ws-edge")
}
