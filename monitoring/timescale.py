"""Time compression of a PrometheusRule for a live test: every duration the
rule language holds (`for:`, range selectors `[5m]`, subquery ranges and steps
`[1h:5m]`, `offset 5m`) divided by one factor, nothing else touched.

A live test cannot wait out 10-minute windows and 15-minute `for:`s. Dividing
every duration by the same factor plays the rules in fast-forward: an alert
whose window is W and whose `for:` is F behaves, on the test's clock, like the
committed one would over W and F. Thresholds (values, including ones that are
seconds such as a 60 s lag or a 0.5 s latency) are values, not durations of the
rule language, and stay as committed: see monitoring/README.md.

Pure: text in, text out. A duration the factor does not divide into whole
milliseconds (Prometheus' resolution) is an error, never rounded: rounding
would make the copy no longer uniform.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from fractions import Fraction
from typing import Any

Doc = dict[str, Any]

_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000,
            "w": 604_800_000, "y": 31_536_000_000}  # fmt: skip
_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_DURATION = r"(?:\d+(?:ms|s|m|h|d|w|y))+"
# Outside string literals: `[range]`, `[range:step]`, `[range:]`, `offset d`.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_RANGE = re.compile(rf"\[\s*({_DURATION})\s*(?::\s*({_DURATION})?\s*)?\]")
_OFFSET = re.compile(rf"(\boffset\s+-?)({_DURATION})\b", re.IGNORECASE)


def milliseconds(text: str) -> int:
    """Milliseconds in a Prometheus duration such as `1h30m` or `90s`."""
    parts = _PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(n) * _UNIT_MS[u] for n, u in parts)


def format_ms(ms: int) -> str:
    """The shortest of `Ns` or `Nms` (Prometheus reads both)."""
    if ms <= 0:
        raise ValueError(f"a duration must be positive: {ms} ms")
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def scale(duration: str, factor: int) -> str:
    """`duration` divided by `factor`, exactly."""
    if factor < 1:
        raise ValueError(f"the compression factor must be a positive integer: {factor}")
    scaled = Fraction(milliseconds(duration), factor)
    if scaled.denominator != 1:
        raise ValueError(f"{duration} / {factor} is not a whole number of milliseconds")
    return format_ms(int(scaled))


def _outside_strings(expr: str, rewrite: Callable[[str], str]) -> str:
    """`rewrite` applied to every stretch of `expr` that is not a string literal
    (a label value such as `code=~"a[5m]"` is data, not a duration)."""
    out, last = [], 0
    for match in _STRING.finditer(expr):
        out.append(rewrite(expr[last : match.start()]))
        out.append(match.group(0))
        last = match.end()
    out.append(rewrite(expr[last:]))
    return "".join(out)


def durations(expr: str) -> list[str]:
    """Every duration in `expr`, in order (ranges, subquery steps, offsets)."""
    found: list[str] = []

    def collect(text: str) -> str:
        for match in re.finditer(f"{_RANGE.pattern}|{_OFFSET.pattern}", text, re.IGNORECASE):
            found.extend(group for group in (match.group(1), match.group(2), match.group(4))
                         if group)  # fmt: skip
        return text

    _outside_strings(expr, collect)
    return found


def compress_expr(expr: str, factor: int) -> str:
    """`expr` with every duration divided by `factor`."""

    def in_range(match: re.Match[str]) -> str:
        step = match.group(2)
        colon = ":" if ":" in match.group(0) else ""
        return f"[{scale(match.group(1), factor)}{colon}{scale(step, factor) if step else ''}]"

    def rewrite(text: str) -> str:
        text = _RANGE.sub(in_range, text)
        return _OFFSET.sub(lambda m: m.group(1) + scale(m.group(2), factor), text)

    return _outside_strings(expr, rewrite)


def compressed(rule: Doc, factor: int) -> Doc:
    """A copy of the PrometheusRule `rule` with every `for:` and every duration
    in every `expr` divided by `factor`; names, labels, annotations, thresholds
    and the committed object itself unchanged."""
    out = copy.deepcopy(rule)
    for group in out["spec"]["groups"]:
        if "interval" in group:
            group["interval"] = scale(group["interval"], factor)
        for entry in group["rules"]:
            entry["expr"] = compress_expr(entry["expr"], factor)
            if "for" in entry:
                entry["for"] = scale(entry["for"], factor)
            if "keep_firing_for" in entry:
                entry["keep_firing_for"] = scale(entry["keep_firing_for"], factor)
    return out


def masked(expr: str) -> str:
    """`expr` with each duration (the ones `durations` finds) replaced by `_`:
    two expressions that differ only in those durations have the same mask."""

    def in_range(match: re.Match[str]) -> str:
        return "[_:_]" if match.group(2) else "[_:]" if ":" in match.group(0) else "[_]"

    def rewrite(text: str) -> str:
        text = _RANGE.sub(in_range, text)
        return _OFFSET.sub(lambda m: m.group(1) + "_", text)

    return _outside_strings(expr, rewrite)
