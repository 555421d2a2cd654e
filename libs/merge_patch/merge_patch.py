"""RFC 7396 JSON Merge Patch: how a session's state changes.

Why merge patch (and not JSON Patch, RFC 6902, or whole-state writes): a
merge patch is itself a JSON object whose leaf paths are exactly what it
changes. That makes the two things optimistic concurrency needs cheap and
obviously correct:

- overlap detection between a stale update and what changed since its
  base_version is a prefix comparison of paths (`changed_paths`,
  `paths_overlap`), with no operation log to interpret;
- re-applying the same patch is idempotent, so a retried or replayed update
  can never drift the state (`apply_merge_patch(apply_merge_patch(d, p), p)
  == apply_merge_patch(d, p)`).

The price is RFC 7396's known limits, which the session state accepts:
`null` cannot be stored as a value (it means "delete"), and arrays are
replaced whole, never merged element-wise.

Everything here is pure: values in, new values out, no I/O.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import TypeAlias

JsonValue: TypeAlias = bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"] | None
"""A decoded JSON value, as `json.loads` returns it."""

JsonPath: TypeAlias = tuple[str, ...]
"""Object keys from the document root down; `()` is the whole document."""

ROOT: JsonPath = ()


class PatchError(ValueError):
    """A patch (or state) that must be refused: names the request field at fault.

    `str(error)` reads "<field>: <message>", the shape the gRPC error model
    puts in INVALID_ARGUMENT details (e.g. "patch_json: not a JSON object").
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def apply_merge_patch(target: JsonValue, patch: JsonValue) -> JsonValue:
    """Returns `target` with `patch` applied, per RFC 7396 section 2.

    Neither argument is mutated, and the result shares no list or dict with
    them, so callers may keep and later modify any of the three freely.
    Recursion follows the patch's depth: validate untrusted patches with
    `validate_patch` first.
    """
    if not isinstance(patch, dict):
        # A non-object patch replaces the whole value (arrays included).
        return _copy(patch)
    # The RFC discards a non-object target's contents before merging into it.
    result: dict[str, JsonValue] = (
        {key: _copy(value) for key, value in target.items()} if isinstance(target, dict) else {}
    )
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


def changed_paths(patch: JsonValue) -> frozenset[JsonPath]:
    """The leaf paths `patch` changes: everything it may alter lies at or below one.

    A member whose value is not an object (a scalar, an array or null) is a
    leaf. A non-empty object recurses. An empty object `{}` is a leaf too: it
    changes that key (it creates an object there, or discards a non-object
    value), though nothing below it. A non-object patch replaces the whole
    document: the root path `()`. The empty patch `{}` changes nothing.

    Paths describe changes to an object document, which session state always
    is. (Applied to a non-object document, any object patch, even `{}`, also
    replaces the whole document with an object, per RFC 7396.)
    """
    if not isinstance(patch, dict):
        return frozenset({ROOT})
    paths: set[JsonPath] = set()
    _collect_paths(patch, ROOT, paths)
    return frozenset(paths)


def _collect_paths(patch: Mapping[str, JsonValue], prefix: JsonPath, out: set[JsonPath]) -> None:
    for key, value in patch.items():
        path = (*prefix, key)
        if isinstance(value, dict) and value:
            _collect_paths(value, path, out)
        else:
            out.add(path)


def overlapping_paths(a: Iterable[JsonPath], b: Iterable[JsonPath]) -> frozenset[JsonPath]:
    """The paths of `a` that are a prefix of, equal to, or below some path of `b`.

    Runs in time linear in the total length of the paths (not |a| x |b|):
    a path overlaps `b` iff it is one of `b`'s prefixes, or one of its own
    prefixes is in `b`.
    """
    b_paths = frozenset(b)
    b_prefixes = {path[:i] for path in b_paths for i in range(len(path) + 1)}
    return frozenset(
        path
        for path in a
        if path in b_prefixes or any(path[:i] in b_paths for i in range(len(path)))
    )


def paths_overlap(a: Iterable[JsonPath], b: Iterable[JsonPath]) -> bool:
    """True iff some path of one set is a prefix of (or equal to) a path of the other.

    The root `()` is a prefix of every path, so it overlaps any non-empty set.
    Symmetric by construction of the definition; an empty set overlaps nothing.
    """
    return bool(overlapping_paths(a, b))


def validate_patch(patch: object, *, max_depth: int = 32, field: str = "patch_json") -> None:
    """Raises `PatchError` unless `patch` is a merge patch the service accepts.

    Accepted: a JSON object at the top, nested no deeper than `max_depth`
    containers (the top object is depth 1; objects and arrays each add one),
    with string keys only and only JSON values inside (finite numbers: Python's
    `json.loads` lets `NaN` and `Infinity` through, JSON does not), and no
    U+0000 and no lone surrogate in any string or key (PostgreSQL's jsonb
    cannot store the one, UTF-8 cannot encode the other). Bounding
    depth here is what keeps the recursive functions of this module safe.
    `field` names the request field in the error, e.g. "initial_state_json"
    when the same rules check an initial state.
    """
    if max_depth < 1:
        raise ValueError(f"max_depth must be at least 1, got {max_depth}")
    if not isinstance(patch, dict):
        raise PatchError(field, "not a JSON object")
    _check_value(patch, ROOT, 1, max_depth, field)


def _check_value(value: object, path: JsonPath, depth: int, max_depth: int, field: str) -> None:
    if isinstance(value, str):
        if "\x00" in value or not _is_utf8(value):
            raise PatchError(
                field, f"the string at {_pointer(path)} contains U+0000 or is not Unicode"
            )
        return
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise PatchError(field, f"{value} at {_pointer(path)} is not a JSON number")
        return
    if not isinstance(value, dict | list):
        raise PatchError(field, f"{type(value).__name__} at {_pointer(path)} is not a JSON value")
    if depth > max_depth:
        raise PatchError(field, f"nested deeper than {max_depth} levels at {_pointer(path)}")
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_value(item, (*path, str(index)), depth + 1, max_depth, field)
        return
    for key, item in value.items():
        if not isinstance(key, str):
            raise PatchError(field, f"key {key!r} at {_pointer(path)} is not a string")
        if "\x00" in key or not _is_utf8(key):
            raise PatchError(field, f"a key at {_pointer(path)} contains U+0000 or is not Unicode")
        _check_value(item, (*path, key), depth + 1, max_depth, field)


def _is_utf8(text: str) -> bool:
    """False for a lone surrogate ("\\ud800" in JSON parses to one): not UTF-8 text."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _pointer(path: JsonPath) -> str:
    """RFC 6901 JSON Pointer text for `path`, so error messages name the spot unambiguously."""
    if not path:
        return "the top level"
    return "".join("/" + key.replace("~", "~0").replace("/", "~1") for key in path)


def json_size(value: JsonValue) -> int:
    """Bytes of `value` as compact UTF-8 JSON: the measure size limits are stated in.

    Compact and unescaped (non-ASCII stays UTF-8) so the figure matches what
    is stored and sent, not an inflated `\\u00e9`-style escaped rendering. Raises ValueError
    for non-finite floats, which have no JSON form.
    """
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return len(text.encode("utf-8"))


def _copy(value: JsonValue) -> JsonValue:
    """A deep copy of a JSON value (cheaper than `copy.deepcopy`: no memo, no reduce)."""
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value
