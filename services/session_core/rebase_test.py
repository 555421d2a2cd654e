"""Tests for rebase: each rule of the module docstring, and why rebasing is sound."""

from collections.abc import Iterable, Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from libs.merge_patch.merge_patch import (
    JsonPath,
    JsonValue,
    apply_merge_patch,
    changed_paths,
    overlapping_paths,
    paths_overlap,
)
from services.session_core.rebase import (
    ChangeKind,
    ChangeSummary,
    Decision,
    FutureBaseError,
    decide,
)

# Same inputs, same verdict: Bazel caches test results, so examples are
# derived deterministically; no deadline, since a loaded CI machine is slow.
SETTINGS = settings(deadline=None, database=None, derandomize=True, max_examples=300)

# Few keys, so that generated patches collide often enough to exercise conflicts.
KEYS = st.sampled_from(["a", "b", "c"])
SCALARS: st.SearchStrategy[JsonValue] = st.one_of(
    st.none(), st.booleans(), st.integers(-2, 2), st.text(max_size=2)
)
JSON: st.SearchStrategy[JsonValue] = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=2), st.dictionaries(KEYS, children, max_size=3)
    ),
    max_leaves=8,
)
OBJECTS: st.SearchStrategy[dict[str, JsonValue]] = st.dictionaries(KEYS, JSON, max_size=3)
STATE_FREE_KINDS: list[ChangeKind] = ["handoff", "attach"]


def update(version: int, *paths: JsonPath) -> ChangeSummary:
    return ChangeSummary(version, "update", frozenset(paths))


def test_current_base_is_applied() -> None:
    assert decide(7, 7, frozenset({("a",)}), [], history_complete=True) == Decision("applied")


def test_current_base_is_applied_even_without_history() -> None:
    assert decide(7, 7, frozenset({("a",)}), [], history_complete=False).outcome == "applied"


def test_future_base_raises_its_own_error() -> None:
    with pytest.raises(FutureBaseError) as error:
        decide(8, 7, frozenset({("a",)}), [], history_complete=True)
    assert error.value.code == "future_base"
    assert (error.value.base_version, error.value.current_version) == (8, 7)
    assert isinstance(error.value, ValueError)


def test_negative_versions_are_refused() -> None:
    with pytest.raises(ValueError, match="never negative"):
        decide(-1, 3, frozenset(), [], history_complete=True)


def test_incomplete_history_is_a_conflict_on_every_path() -> None:
    paths = frozenset({("a",), ("b", "c")})
    decision = decide(3, 5, paths, [update(5, ("z",))], history_complete=False)
    assert decision == Decision("conflict", paths, "history_incomplete")


def test_overlapping_update_since_is_a_conflict_naming_the_incoming_paths() -> None:
    since = [update(4, ("prefs", "theme")), update(5, ("cursor",))]
    paths = frozenset({("prefs",), ("cursor", "line"), ("title",)})
    decision = decide(3, 5, paths, since, history_complete=True)
    assert decision == Decision("conflict", frozenset({("prefs",), ("cursor", "line")}), "overlap")


def test_disjoint_updates_since_rebase() -> None:
    since = [update(4, ("prefs", "theme")), update(5, ("cursor",))]
    paths = frozenset({("prefs", "font"), ("title",)})
    assert decide(3, 5, paths, since, history_complete=True) == Decision("rebased")


@pytest.mark.parametrize("kind", STATE_FREE_KINDS)
def test_handoff_and_attach_never_conflict(kind: ChangeKind) -> None:
    since = [ChangeSummary(4, kind), update(5, ("b",))]
    decision = decide(3, 5, frozenset({("a",)}), since, history_complete=True)
    assert decision.outcome == "rebased"


@pytest.mark.parametrize("kind", ["created", "ended"])
def test_created_and_ended_replace_the_whole_state(kind: ChangeKind) -> None:
    paths = frozenset({("a",), ("b", "c")})
    decision = decide(3, 4, paths, [ChangeSummary(4, kind)], history_complete=True)
    assert decision == Decision("conflict", paths, "overlap")


def test_stale_empty_patch_rebases_since_it_changes_nothing() -> None:
    assert decide(3, 4, frozenset(), [update(4, ())], history_complete=True).outcome == "rebased"


@pytest.mark.parametrize(
    "versions",
    [[], [4], [5], [4, 5, 6], [5, 4], [4, 4, 5]],
)
def test_history_said_complete_must_be_every_version_since(versions: list[int]) -> None:
    since = [ChangeSummary(v, "attach") for v in versions]
    with pytest.raises(ValueError, match="history said complete"):
        decide(3, 5, frozenset({("a",)}), since, history_complete=True)


def test_only_updates_carry_paths() -> None:
    with pytest.raises(ValueError, match="a handoff change carries no patch paths"):
        ChangeSummary(4, "handoff", frozenset({("a",)}))


def _replay(doc: JsonValue, patches: Iterable[JsonValue]) -> JsonValue:
    for patch in patches:
        doc = apply_merge_patch(doc, patch)
    return doc


def _prune(
    patch: Mapping[str, JsonValue], forbidden: frozenset[JsonPath], prefix: JsonPath = ()
) -> dict[str, JsonValue]:
    """`patch` without the members whose changed paths overlap `forbidden`."""
    kept: dict[str, JsonValue] = {}
    for key, value in patch.items():
        path = (*prefix, key)
        if isinstance(value, dict) and value:
            if any(path[:i] in forbidden for i in range(len(path) + 1)):
                continue
            # Emptied objects are dropped: `{}` would change `path` itself.
            if inner := _prune(value, forbidden, path):
                kept[key] = inner
        elif not overlapping_paths({path}, forbidden):
            kept[key] = value
    return kept


@SETTINGS
@given(doc=JSON, p1=OBJECTS, p2=OBJECTS)
def test_patches_on_disjoint_paths_commute(
    doc: JsonValue, p1: dict[str, JsonValue], p2: dict[str, JsonValue]
) -> None:
    p2 = _prune(p2, changed_paths(p1))
    assert not paths_overlap(changed_paths(p1), changed_paths(p2))
    assert _replay(doc, [p1, p2]) == _replay(doc, [p2, p1])


# One intermediate change: a kind, and for updates the patch it applied.
CHANGES: st.SearchStrategy[tuple[str, dict[str, JsonValue]]] = st.one_of(
    st.tuples(st.just("update"), OBJECTS),
    st.tuples(st.sampled_from(STATE_FREE_KINDS), st.just({})),
)


def _check_rebase_is_sound(
    base: dict[str, JsonValue],
    changes: list[tuple[str, dict[str, JsonValue]]],
    incoming: dict[str, JsonValue],
) -> Decision:
    """Decides on `incoming` made at `base` after `changes`; if rebased, checks the result."""
    base_version = 10
    since = [
        ChangeSummary(base_version + i, "update", changed_paths(patch))
        if kind == "update"
        else ChangeSummary(base_version + i, "attach" if kind == "attach" else "handoff")
        for i, (kind, patch) in enumerate(changes, start=1)
    ]
    intermediate = [patch for kind, patch in changes if kind == "update"]
    current = _replay(base, intermediate)
    paths = changed_paths(incoming)
    decision = decide(base_version, base_version + len(changes), paths, since, True)
    if decision.outcome == "rebased":
        # What the client would have got had it been current all along.
        serial = _replay(apply_merge_patch(base, incoming), intermediate)
        assert apply_merge_patch(current, incoming) == serial
    elif decision.outcome == "conflict":
        assert decision.conflicting_paths and decision.conflicting_paths <= paths
    return decision


@SETTINGS
@given(base=OBJECTS, changes=st.lists(CHANGES, max_size=4), incoming=OBJECTS)
def test_whenever_rebased_the_result_equals_serial_application(
    base: dict[str, JsonValue],
    changes: list[tuple[str, dict[str, JsonValue]]],
    incoming: dict[str, JsonValue],
) -> None:
    _check_rebase_is_sound(base, changes, incoming)


@SETTINGS
@given(base=OBJECTS, changes=st.lists(CHANGES, min_size=1, max_size=4), incoming=OBJECTS)
def test_an_update_disjoint_from_history_always_rebases_soundly(
    base: dict[str, JsonValue],
    changes: list[tuple[str, dict[str, JsonValue]]],
    incoming: dict[str, JsonValue],
) -> None:
    touched = frozenset(path for _, patch in changes for path in changed_paths(patch))
    incoming = _prune(incoming, touched)
    decision = _check_rebase_is_sound(base, changes, incoming)
    assert decision.outcome == "rebased"
