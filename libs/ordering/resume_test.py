"""Tests for resume: every branch of plan_resume and Sequencer, and in-order delivery."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from libs.ordering.resume import (
    Deliver,
    Duplicate,
    Gap,
    Replay,
    Resync,
    Sequencer,
    Snapshot,
    next_expected,
    plan_resume,
)

# Same inputs, same verdict: Bazel caches test results, so examples are
# derived deterministically; no deadline, since a loaded CI machine is slow.
SETTINGS = settings(deadline=None, database=None, derandomize=True, max_examples=300)


def test_next_expected_is_the_following_version() -> None:
    assert next_expected(0) == 1
    assert next_expected(41) == 42


@pytest.mark.parametrize(
    ("args", "plan"),
    [
        # (client_epoch, client_version, current_epoch, current_version, oldest, max_replay)
        ((1, 5, 2, 5, 1, 100), Snapshot("epoch_changed")),
        ((3, 5, 2, 5, 1, 100), Snapshot("epoch_changed")),
        ((1, 9, 1, 5, 1, 100), Snapshot("client_ahead")),
        ((1, 5, 1, 5, 1, 100), Replay(5, 5)),
        # Current beats trimmed history and a zero replay budget: nothing to send.
        ((1, 5, 1, 5, None, 0), Replay(5, 5)),
        ((1, 2, 1, 9, 4, 100), Snapshot("history_trimmed")),
        ((1, 2, 1, 9, None, 100), Snapshot("history_trimmed")),
        # The change right after the client's (3) is the oldest kept: replayable.
        ((1, 2, 1, 9, 3, 100), Replay(2, 9)),
        ((1, 0, 1, 9, 1, 100), Replay(0, 9)),
        ((1, 2, 1, 9, 3, 6), Snapshot("too_far_behind")),
        ((1, 2, 1, 9, 3, 7), Replay(2, 9)),
        # Trimmed is reported before too far behind: it is the harder fact.
        ((1, 2, 1, 9, 5, 1), Snapshot("history_trimmed")),
    ],
)
def test_plan_resume(args: tuple[int, int, int, int, int | None, int], plan: object) -> None:
    assert plan_resume(*args) == plan


def test_replay_counts_the_changes_to_send() -> None:
    assert Replay(2, 9).count == 7
    assert Replay(5, 5).count == 0


@pytest.mark.parametrize("args", [(1, -1, 1, 5, 1, 10), (1, 1, 1, -5, 1, 10), (1, 1, 1, 5, 1, -1)])
def test_plan_resume_refuses_negative_numbers(
    args: tuple[int, int, int, int, int | None, int],
) -> None:
    with pytest.raises(ValueError, match="never negative"):
        plan_resume(*args)


def test_sequencer_delivers_the_next_version_and_advances() -> None:
    sequencer = Sequencer(epoch=1, version=4)
    assert sequencer.offer(1, 5) == Deliver(5)
    assert (sequencer.epoch, sequencer.version) == (1, 5)


def test_sequencer_drops_what_it_has_delivered() -> None:
    sequencer = Sequencer(epoch=1, version=4)
    assert sequencer.offer(1, 4) == Duplicate(4)
    assert sequencer.offer(1, 2) == Duplicate(2)
    assert sequencer.version == 4


def test_sequencer_reports_a_gap_without_advancing() -> None:
    sequencer = Sequencer(epoch=1, version=4)
    assert sequencer.offer(1, 8) == Gap(5, 7)
    assert sequencer.version == 4
    assert sequencer.offer(1, 6) == Gap(5, 5)


def test_sequencer_drops_changes_of_a_superseded_epoch() -> None:
    sequencer = Sequencer(epoch=2, version=4)
    assert sequencer.offer(1, 9) == Duplicate(9)
    assert (sequencer.epoch, sequencer.version) == (2, 4)


def test_sequencer_asks_for_a_snapshot_on_a_newer_epoch_until_reset() -> None:
    sequencer = Sequencer(epoch=1, version=4)
    assert sequencer.offer(2, 1) == Resync(2)
    assert sequencer.offer(2, 2) == Resync(2)
    assert (sequencer.epoch, sequencer.version) == (1, 4)
    sequencer.reset(2, 1)
    assert sequencer.offer(2, 1) == Duplicate(1)
    assert sequencer.offer(2, 2) == Deliver(2)
    assert (sequencer.epoch, sequencer.version) == (2, 2)


@st.composite
def unordered_streams(draw: st.DrawFn) -> tuple[int, list[int]]:
    """n, and every version 1..n at least once, shuffled, some repeated."""
    n = draw(st.integers(min_value=0, max_value=30))
    versions = list(range(1, n + 1))
    repeats = draw(st.lists(st.sampled_from(versions), max_size=n)) if versions else []
    return n, draw(st.permutations(versions + repeats))


@SETTINGS
@given(stream=unordered_streams())
def test_any_stream_plus_backfill_delivers_each_version_once_in_order(
    stream: tuple[int, list[int]],
) -> None:
    n, arrivals = stream
    epoch = 7
    sequencer = Sequencer(epoch, 0)
    delivered: list[int] = []

    def feed(version: int) -> None:
        verdict = sequencer.offer(epoch, version)
        if isinstance(verdict, Deliver):
            delivered.append(verdict.version)
        elif isinstance(verdict, Gap):
            # Backfill from the log (it holds every version), then the change itself.
            for missing in range(verdict.missing_from, verdict.missing_to + 1):
                assert sequencer.offer(epoch, missing) == Deliver(missing)
                delivered.append(missing)
            assert sequencer.offer(epoch, version) == Deliver(version)
            delivered.append(version)
        else:
            assert verdict == Duplicate(version)

    for version in arrivals:
        feed(version)
    assert delivered == list(range(1, n + 1))
    assert sequencer.version == n


@SETTINGS
@given(
    client_version=st.integers(0, 50),
    current_version=st.integers(0, 50),
    oldest=st.one_of(st.none(), st.integers(1, 51)),
    max_replay=st.integers(0, 60),
)
def test_a_replay_is_always_gap_free_and_available(
    client_version: int, current_version: int, oldest: int | None, max_replay: int
) -> None:
    plan = plan_resume(1, client_version, 1, current_version, oldest, max_replay)
    if isinstance(plan, Replay):
        # The replay starts right at the client and ends at the session's version...
        assert plan.from_version_exclusive == client_version
        assert plan.to_version_inclusive == current_version
        assert 0 <= plan.count <= max_replay
        # ...and every change it needs is still in the log.
        if plan.count:
            assert oldest is not None
            assert oldest <= next_expected(client_version)
    else:
        assert client_version != current_version
