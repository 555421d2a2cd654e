"""The time compression changes durations, all of them by the same factor, and
nothing else; on the committed rules too (which stay as they are)."""

from __future__ import annotations

import pytest

from monitoring import rules, timescale

FACTOR = 30


def test_a_duration_is_divided_exactly() -> None:
    assert timescale.scale("2m", 30) == "4s"
    assert timescale.scale("1h30m", 30) == "180s"
    assert timescale.scale("3d", 30) == "8640s"
    assert timescale.scale("1s", 8) == "125ms"
    assert timescale.scale("5m", 1) == "300s"


@pytest.mark.parametrize(
    ("duration", "factor"), [("1s", 3), ("1ms", 2), ("5m", 0), ("5m", -1), ("5 m", 2), ("", 2)]
)
def test_what_cannot_be_divided_exactly_is_refused(duration: str, factor: int) -> None:
    with pytest.raises(ValueError):
        timescale.scale(duration, factor)


def test_ranges_subqueries_and_offsets_are_compressed() -> None:
    expr = 'max_over_time(rate(x{a="b"}[5m])[1h:1m]) + y offset 10m + z[ 2m : ]'
    assert timescale.compress_expr(expr, 30) == (
        'max_over_time(rate(x{a="b"}[10s])[120s:2s]) + y offset 20s + z[4s:]'
    )
    assert timescale.durations(expr) == ["5m", "1h", "1m", "10m", "2m"]


def test_names_numbers_and_strings_are_not_durations() -> None:
    # a recorded series named after its window, a threshold, a label value that
    # looks like a range, and one that looks like an offset
    expr = 'ns:ratio_rate5m{code=~"a[5m]", w="offset 1h"} > (14.4 * 0.001) and on() vector(60)'
    assert timescale.compress_expr(expr, 30) == expr
    assert timescale.durations(expr) == []


def test_the_mask_hides_durations_only() -> None:
    assert timescale.masked("rate(x[5m]) offset 1h") == "rate(x[_]) offset _"
    assert timescale.masked("rate(x[5m])") == timescale.masked("rate(x[10s])")
    assert timescale.masked("rate(x[5m]) > 1") != timescale.masked("rate(x[5m]) > 2")
    assert timescale.masked("ns:a_rate5m") != timescale.masked("ns:a_rate10s")


def test_the_committed_rules_change_only_in_durations_all_by_one_factor() -> None:
    rule = rules.load()
    fast = timescale.compressed(rule, FACTOR)
    assert rules.load() == rule  # the committed file and the loaded object untouched
    scaled = 0
    for old, new in zip(rules.rule_entries(rule), rules.rule_entries(fast), strict=True):
        same = {k: v for k, v in old.items() if k not in ("expr", "for")}
        assert same == {k: v for k, v in new.items() if k not in ("expr", "for")}
        assert timescale.masked(old["expr"]) == timescale.masked(new["expr"])
        pairs = list(
            zip(timescale.durations(old["expr"]), timescale.durations(new["expr"]), strict=True)
        )
        if "for" in old:
            pairs.append((old["for"], new["for"]))
        assert ("for" in old) == ("for" in new)
        for before, after in pairs:
            assert timescale.milliseconds(before) == FACTOR * timescale.milliseconds(after)
            scaled += 1
    # every range and every `for:` of the committed file was found and scaled
    committed = rules.RULE_PATH.read_text()
    assert scaled == committed.count("[") + committed.count("\n          for: ")


def test_a_change_other_than_a_duration_would_be_seen() -> None:
    rule = rules.load()
    broken = timescale.compressed(rule, FACTOR)
    entry = rules.alerts(broken)["SyncBridgeHighErrorRate"]
    entry["expr"] = entry["expr"].replace("0.01", "0.02")
    old = rules.alerts(rule)["SyncBridgeHighErrorRate"]["expr"]
    assert timescale.masked(old) != timescale.masked(entry["expr"])
