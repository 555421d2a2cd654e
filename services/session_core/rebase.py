"""Optimistic concurrency: may a stale update be applied, and how?

Every update names the `base_version` its patch was made against. THE rules,
for an update to a session now at `current_version` (same epoch; an epoch
mismatch is refused before these rules run):

1. `base_version == current_version`: **applied**. Nothing happened since.
2. `base_version > current_version`: `FutureBaseError` is raised. No correct
   client can hold a version the session never had; it signals a client bug or
   state the server lost. It is an exception, not a fourth outcome, so that
   `Decision.outcome` stays exactly the outcomes the wire knows; the caller
   answers it like a conflict (`conflict`, with the current version and
   epoch), which makes the client resync rather than guess.
3. `base_version < current_version`:
   a. if the caller cannot supply every change since `base_version`
      (`history_complete=False`, e.g. the change log was trimmed):
      **conflict**, reason "history_incomplete": what the patch might collide
      with is unknown, and refusing is the only answer that never loses a
      write silently;
   b. if any change since touches a path overlapping a path the incoming
      patch changes: **conflict**, reason "overlap", reporting the incoming
      patch's overlapping paths. An update touches its patch's changed paths;
      "created" and "ended" replace or remove the whole state, so they touch
      the root `()`, which overlaps every path; "handoff" and "attach" touch
      no state and never conflict;
   c. otherwise: **rebased**. The patch is applied unchanged on top of the
      current state. That is sound because RFC 7396 merge patches on paths
      that do not overlap commute: applying the intermediate patches and then
      the incoming one equals applying the incoming one first, i.e. the
      result is exactly what the client would have got had it been current.

Pure: the caller reads the history and applies the patch; this module only
decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

from libs.merge_patch.merge_patch import ROOT, JsonPath, overlapping_paths

ChangeKind: TypeAlias = Literal["update", "handoff", "attach", "created", "ended"]
Outcome: TypeAlias = Literal["applied", "rebased", "conflict"]
ConflictReason: TypeAlias = Literal["overlap", "history_incomplete"]


class FutureBaseError(ValueError):
    """The update's base_version is newer than the session (stable code `future_base`)."""

    code = "future_base"

    def __init__(self, base_version: int, current_version: int) -> None:
        super().__init__(
            f"base_version {base_version} is ahead of the session's version {current_version}"
        )
        self.base_version = base_version
        self.current_version = current_version


@dataclass(frozen=True, slots=True)
class ChangeSummary:
    """What `decide` needs to know about one committed change.

    `paths` are the changed paths of an update's patch (as applied); other
    kinds carry none, since their effect on the state is fixed by their kind.
    """

    version: int
    kind: ChangeKind
    paths: frozenset[JsonPath] = frozenset()

    def __post_init__(self) -> None:
        if self.kind != "update" and self.paths:
            raise ValueError(f"a {self.kind} change carries no patch paths")

    def touched_paths(self) -> frozenset[JsonPath]:
        """The state paths this change may have altered (see rule 3b)."""
        if self.kind == "update":
            return self.paths
        if self.kind in ("created", "ended"):
            return frozenset({ROOT})
        return frozenset()


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict on one update.

    `conflicting_paths` is empty unless `outcome` is "conflict"; then it holds
    the incoming patch's paths that collided (reason "overlap") or all of its
    paths, any of which may have changed unseen (reason "history_incomplete").
    """

    outcome: Outcome
    conflicting_paths: frozenset[JsonPath] = frozenset()
    reason: ConflictReason | None = None


APPLIED = Decision("applied")
REBASED = Decision("rebased")


def decide(
    base_version: int,
    current_version: int,
    patch_paths: frozenset[JsonPath],
    since: Sequence[ChangeSummary],
    history_complete: bool,
) -> Decision:
    """Applies THE rules of this module to one incoming update.

    `patch_paths` is `changed_paths(patch)` of the incoming patch. `since`
    holds the changes committed after `base_version` in version order; when
    `history_complete` is true it must be every one of them (versions are
    gap-free per epoch), else ValueError, because deciding on a history the
    caller wrongly believes complete would let a conflicting write through.
    Raises FutureBaseError when `base_version > current_version`.
    """
    if base_version < 0 or current_version < 0:
        raise ValueError(f"versions are never negative: {base_version}, {current_version}")
    if base_version > current_version:
        raise FutureBaseError(base_version, current_version)
    if base_version == current_version:
        return APPLIED
    if not history_complete:
        return Decision("conflict", patch_paths, "history_incomplete")
    versions = [change.version for change in since]
    if versions != list(range(base_version + 1, current_version + 1)):
        raise ValueError(
            f"history said complete but holds versions {versions}, "
            f"not {base_version + 1}..{current_version}"
        )
    touched = frozenset(path for change in since for path in change.touched_paths())
    conflicting = overlapping_paths(patch_paths, touched)
    if conflicting:
        return Decision("conflict", conflicting, "overlap")
    return REBASED
