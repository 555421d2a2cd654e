"""Tests for merge_patch: RFC 7396's own examples, the path rules, and properties."""

import copy
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from libs.merge_patch.merge_patch import (
    JsonPath,
    JsonValue,
    PatchError,
    apply_merge_patch,
    changed_paths,
    json_size,
    overlapping_paths,
    paths_overlap,
    validate_patch,
)

# Same inputs, same verdict: Bazel caches test results, so examples are
# derived deterministically; no deadline, since a loaded CI machine is slow.
SETTINGS = settings(deadline=None, database=None, derandomize=True, max_examples=300)

# Few keys, so that generated documents and patches touch the same paths often.
KEYS = st.sampled_from(["a", "b", "c", "d"])
SCALARS: st.SearchStrategy[JsonValue] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    # See validate_patch: no U+0000, no lone surrogates.
    st.text(st.characters(codec="utf-8", blacklist_characters="\x00"), max_size=3),
)
JSON: st.SearchStrategy[JsonValue] = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(KEYS, children, max_size=4)
    ),
    max_leaves=12,
)
OBJECTS: st.SearchStrategy[JsonValue] = st.dictionaries(KEYS, JSON, max_size=4)
PATHS = st.frozensets(st.lists(KEYS, max_size=3).map(tuple), max_size=4)


# RFC 7396 Appendix A, verbatim: (original, patch, result).
RFC_APPENDIX_A = [
    ('{"a":"b"}', '{"a":"c"}', '{"a":"c"}'),
    ('{"a":"b"}', '{"b":"c"}', '{"a":"b","b":"c"}'),
    ('{"a":"b"}', '{"a":null}', "{}"),
    ('{"a":"b","b":"c"}', '{"a":null}', '{"b":"c"}'),
    ('{"a":["b"]}', '{"a":"c"}', '{"a":"c"}'),
    ('{"a":"c"}', '{"a":["b"]}', '{"a":["b"]}'),
    ('{"a":{"b":"c"}}', '{"a":{"b":"d","c":null}}', '{"a":{"b":"d"}}'),
    ('{"a":[{"b":"c"}]}', '{"a":[1]}', '{"a":[1]}'),
    ('["a","b"]', '["c","d"]', '["c","d"]'),
    ('{"a":"b"}', '["c"]', '["c"]'),
    ('{"a":"foo"}', "null", "null"),
    ('{"a":"foo"}', '"bar"', '"bar"'),
    ('{"e":null}', '{"a":1}', '{"e":null,"a":1}'),
    ("[1,2]", '{"a":"b","c":null}', '{"a":"b"}'),
    ("{}", '{"a":{"bb":{"ccc":null}}}', '{"a":{"bb":{}}}'),
]


@pytest.mark.parametrize(("original", "patch", "result"), RFC_APPENDIX_A)
def test_rfc_7396_appendix_a(original: str, patch: str, result: str) -> None:
    assert apply_merge_patch(json.loads(original), json.loads(patch)) == json.loads(result)


def test_rfc_7396_section_3_example() -> None:
    target: JsonValue = {
        "title": "Goodbye!",
        "author": {"givenName": "John", "familyName": "Doe"},
        "tags": ["example", "sample"],
        "content": "This will be unchanged",
    }
    patch: JsonValue = {
        "title": "Hello!",
        "phoneNumber": "+01-123-456-7890",
        "author": {"familyName": None},
        "tags": ["example"],
    }
    assert apply_merge_patch(target, patch) == {
        "title": "Hello!",
        "author": {"givenName": "John"},
        "tags": ["example"],
        "content": "This will be unchanged",
        "phoneNumber": "+01-123-456-7890",
    }


def test_changed_paths_leaves_nulls_arrays_and_empty_objects() -> None:
    patch: JsonValue = {"a": 1, "b": {"c": None, "d": {"e": [1, {"x": 1}]}}, "f": {}}
    assert changed_paths(patch) == {("a",), ("b", "c"), ("b", "d", "e"), ("f",)}


def test_changed_paths_empty_patch_changes_nothing() -> None:
    assert changed_paths({}) == frozenset()


def test_changed_paths_are_relative_to_an_object_document() -> None:
    # Even the empty patch turns a non-object document into `{}` (RFC 7396),
    # which no path reports: paths describe changes to object documents.
    assert apply_merge_patch([1], {}) == {}
    assert changed_paths({}) == frozenset()


@pytest.mark.parametrize("patch", [None, 1, "x", [], [{"a": 1}], True])
def test_changed_paths_non_object_patch_is_the_root(patch: JsonValue) -> None:
    assert changed_paths(patch) == {()}


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ({()}, {("x", "y")}, True),
        ({()}, set(), False),
        (set(), set(), False),
        ({("a",)}, {("a", "b")}, True),
        ({("a", "b")}, {("a", "b")}, True),
        ({("a", "b")}, {("a", "c")}, False),
        # Components, not characters: "a" is no prefix of "ab".
        ({("a",)}, {("ab",)}, False),
        ({("a", "b"), ("c",)}, {("d",), ("c", "e", "f")}, True),
    ],
)
def test_paths_overlap(a: set[JsonPath], b: set[JsonPath], expected: bool) -> None:
    assert paths_overlap(a, b) is expected
    assert paths_overlap(b, a) is expected


def test_overlapping_paths_reports_the_first_sets_paths() -> None:
    mine = {("a",), ("b", "c"), ("d",)}
    theirs = {("a", "x"), ("b",)}
    assert overlapping_paths(mine, theirs) == {("a",), ("b", "c")}


def test_apply_does_not_mutate_or_share_with_inputs() -> None:
    target: JsonValue = {"keep": {"deep": [1, 2]}, "gone": 1, "obj": {"x": 1}}
    patch: JsonValue = {"gone": None, "obj": {"y": [3]}, "new": {"z": None}}
    before = copy.deepcopy((target, patch))
    result = apply_merge_patch(target, patch)
    assert (target, patch) == before
    assert result == {"keep": {"deep": [1, 2]}, "obj": {"x": 1, "y": [3]}, "new": {}}
    assert isinstance(result, dict) and isinstance(target, dict) and isinstance(patch, dict)
    assert result["keep"] is not target["keep"]
    assert isinstance(patch["obj"], dict)
    assert isinstance(result["obj"], dict)
    assert result["obj"]["y"] is not patch["obj"]["y"]


@pytest.mark.parametrize("patch", [None, 1, "x", [1], ["a", {"b": 1}]])
def test_validate_rejects_non_object_patches(patch: object) -> None:
    with pytest.raises(PatchError) as error:
        validate_patch(patch)
    assert error.value.field == "patch_json"
    assert str(error.value) == "patch_json: not a JSON object"


def _nested(depth: int) -> dict[str, JsonValue]:
    """An object `depth` containers deep: {"k": {"k": ... {}}}."""
    value: dict[str, JsonValue] = {}
    for _ in range(depth - 1):
        value = {"k": value}
    return value


def test_validate_depth_limit_is_inclusive() -> None:
    validate_patch(_nested(32))
    validate_patch(_nested(3), max_depth=3)
    with pytest.raises(PatchError, match="deeper than 32 levels at /k/k"):
        validate_patch(_nested(33))


def test_validate_counts_arrays_as_depth() -> None:
    validate_patch({"a": [1]}, max_depth=2)
    with pytest.raises(PatchError, match="deeper than 2 levels at /a/0"):
        validate_patch({"a": [[1]]}, max_depth=2)


def test_validate_rejects_a_bad_max_depth() -> None:
    with pytest.raises(ValueError, match="max_depth"):
        validate_patch({}, max_depth=0)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({1: "x"}, "key 1 at the top level is not a string"),
        ({"a": {"b/c": {None: 1}}}, "key None at /a/b~1c is not a string"),
        ({"a": math.nan}, "nan at /a is not a JSON number"),
        ({"a": [math.inf]}, "inf at /a/0 is not a JSON number"),
        ({"a": (1, 2)}, "tuple at /a is not a JSON value"),
        ({"a": {1, 2}}, "set at /a is not a JSON value"),
        ({"a": ["ok", "nul\x00"]}, "the string at /a/1 contains U+0000 or is not Unicode"),
        ({"a": {"k\x00": 1}}, "a key at /a contains U+0000 or is not Unicode"),
        ({"a": "\ud800"}, "the string at /a contains U+0000 or is not Unicode"),
    ],
)
def test_validate_rejects_what_json_cannot_say(patch: object, message: str) -> None:
    with pytest.raises(PatchError) as error:
        validate_patch(patch)
    assert error.value.message == message


def test_validate_names_the_field_it_is_told() -> None:
    with pytest.raises(PatchError, match=r"^initial_state_json: not a JSON object$"):
        validate_patch([], field="initial_state_json")


def test_validate_accepts_deletes_and_every_json_type() -> None:
    validate_patch({"a": None, "b": [1, 2.5, "x", True, None, {}], "c": {"d": {}}})


def test_json_size_is_compact_utf8() -> None:
    assert json_size({"a": [1, 2]}) == len(b'{"a":[1,2]}')
    assert json_size({"a": "é"}) == len('{"a":"é"}'.encode())
    assert json_size(None) == 4


def test_json_size_refuses_non_finite_numbers() -> None:
    with pytest.raises(ValueError):
        json_size({"a": math.nan})


@SETTINGS
@given(doc=JSON, patch=JSON)
def test_applying_a_patch_twice_equals_once(doc: JsonValue, patch: JsonValue) -> None:
    once = apply_merge_patch(doc, patch)
    assert apply_merge_patch(once, patch) == once


def _leaves(value: JsonValue, path: JsonPath = ()) -> dict[JsonPath, JsonValue]:
    """Every leaf of `value` by path; a non-object or an empty object is a leaf."""
    if isinstance(value, dict) and value:
        leaves: dict[JsonPath, JsonValue] = {}
        for key, item in value.items():
            leaves.update(_leaves(item, (*path, key)))
        return leaves
    return {path: value}


# Documents are objects, as session states always are (see changed_paths).
@SETTINGS
@given(doc=OBJECTS, patch=JSON)
def test_a_patch_changes_only_its_changed_paths(doc: JsonValue, patch: JsonValue) -> None:
    before, after = _leaves(doc), _leaves(apply_merge_patch(doc, patch))
    differing = {
        path
        for path in before.keys() | after.keys()
        if path not in before or path not in after or before[path] != after[path]
    }
    changed = changed_paths(patch)
    # A differing leaf lies at or below a changed path, or is a proper prefix
    # of one (a scalar there became an object holding the changed path).
    assert overlapping_paths(differing, changed) == differing


@SETTINGS
@given(doc=JSON, patch=JSON)
def test_apply_never_mutates_its_inputs(doc: JsonValue, patch: JsonValue) -> None:
    before = copy.deepcopy((doc, patch))
    apply_merge_patch(doc, patch)
    assert (doc, patch) == before


@SETTINGS
@given(a=PATHS, b=PATHS)
def test_overlap_is_symmetric_and_means_prefix(
    a: frozenset[JsonPath], b: frozenset[JsonPath]
) -> None:
    naive = any(p[: len(q)] == q or q[: len(p)] == p for p in a for q in b)
    assert paths_overlap(a, b) is paths_overlap(b, a) is naive


@SETTINGS
@given(patch=OBJECTS)
def test_every_generated_object_patch_validates(patch: JsonValue) -> None:
    validate_patch(patch)
