"""Where things are: environments in promotion order, services, their overlays.

One table so the tool, its tests and the runbooks agree on names (the gitops
contract: `gitops/apps/<service>/overlays/<env>/kustomization.yaml`, images
`registry.harmonyflow.io/syncbridge/<service>`).
"""

from __future__ import annotations

from dataclasses import dataclass

# Promotion order: a digest enters at dev (release) and moves one step at a time.
ENVIRONMENTS = ("dev", "staging", "prod")
# Environments whose changes go to a review branch instead of the current one.
REVIEWED = frozenset({"prod"})
IMAGE_PREFIX = "registry.harmonyflow.io/syncbridge/"


@dataclass(frozen=True)
class Service:
    """A deployable service: its overlay folder and its image's digest file."""

    name: str
    package: str  # Bazel package of the image target

    @property
    def image(self) -> str:
        return IMAGE_PREFIX + self.name

    @property
    def digest_file(self) -> str:
        """Output of `bazel build //<package>:image_index`, relative to the workspace.

        The index's digest (linux/amd64 and linux/arm64), so every node pool
        pulls its own platform's image under the one digest an overlay pins.
        """
        return f"bazel-bin/{self.package}/image_index.digest"

    def overlay(self, env: str) -> str:
        """Repository-relative path of this service's kustomization for `env`."""
        return f"gitops/apps/{self.name}/overlays/{env}/kustomization.yaml"


SERVICES: dict[str, Service] = {
    s.name: s
    for s in (
        Service("ws-edge", "services/ws_edge"),
        Service("session-core", "services/session_core"),
    )
}


def next_environment(env: str) -> str | None:
    """The environment a digest goes to after `env`, or None after the last."""
    index = ENVIRONMENTS.index(env)
    return ENVIRONMENTS[index + 1] if index + 1 < len(ENVIRONMENTS) else None
