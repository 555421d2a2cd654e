"""What every check reports: which render root, which object, what is wrong."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, order=True)
class Finding:
    """One failure. `subject` names the object (`Kind/namespace/name`), or the root."""

    root: str
    check: str  # "render", "schema" or "policy <package>"
    subject: str
    message: str

    def __str__(self) -> str:
        return f"{self.root}: {self.check}: {self.subject}: {self.message}"


def subject(obj: Any) -> str:
    """`Kind/namespace/name`, "-" for no namespace, as policies/ name objects."""
    if not isinstance(obj, dict):
        return f"<not an object: {type(obj).__name__}>"
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        metadata = {}
    kind = obj.get("kind") or "<no kind>"
    name = metadata.get("name") or "<no name>"
    namespace = metadata.get("namespace") or "-"
    return f"{kind}/{namespace}/{name}"
