"""The backoff's bounds and jitter, for every policy hypothesis can think of."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libs.backoff.backoff import Backoff, BackoffPolicy


@st.composite
def policies(draw: st.DrawFn) -> BackoffPolicy:
    base = draw(st.floats(min_value=1e-4, max_value=10.0))
    cap = draw(st.floats(min_value=base, max_value=1e4))
    jitter = draw(st.floats(min_value=0.0, max_value=1.0))
    return BackoffPolicy(base, cap, jitter)


attempts = st.integers(min_value=0, max_value=10_000)
rands = st.floats(min_value=0.0, max_value=1.0)


@given(policies(), attempts, rands)
def test_a_delay_stays_in_its_window(policy: BackoffPolicy, attempt: int, r: float) -> None:
    delay = policy.delay(attempt, lambda: r)
    ceiling = policy.ceiling(attempt)
    assert ceiling <= policy.cap
    assert ceiling * (1 - policy.jitter) - 1e-12 <= delay <= ceiling + 1e-12


@given(policies(), attempts)
def test_ceilings_double_until_the_cap(policy: BackoffPolicy, attempt: int) -> None:
    now, then = policy.ceiling(attempt), policy.ceiling(attempt + 1)
    assert now <= then
    assert then == pytest.approx(min(policy.cap, 2 * now))


@given(policies(), attempts)
def test_jitter_spans_the_window(policy: BackoffPolicy, attempt: int) -> None:
    ceiling = policy.ceiling(attempt)
    assert policy.delay(attempt, lambda: 1.0) == pytest.approx(ceiling)
    assert policy.delay(attempt, lambda: 0.0) == pytest.approx(ceiling * (1 - policy.jitter))


@given(policies(), st.integers(min_value=1, max_value=50))
def test_reset_starts_over(policy: BackoffPolicy, runs: int) -> None:
    backoff = Backoff(policy.base, policy.cap, jitter=policy.jitter, rand=lambda: 1.0)
    first = backoff.next_delay()
    for _ in range(runs):
        backoff.next_delay()
    assert backoff.attempt == runs + 1
    backoff.reset()
    assert backoff.next_delay() == first == pytest.approx(policy.base)


def test_the_default_random_source_is_jittered() -> None:
    policy = BackoffPolicy(1.0, 1.0)
    delays = {policy.delay(0) for _ in range(50)}
    assert len(delays) > 1
    assert all(0.0 <= d <= 1.0 for d in delays)


def test_ceiling_doubles_up_to_the_cap() -> None:
    backoff = Backoff(base=0.1, cap=1.0, rand=lambda: 1.0)
    delays = [backoff.next_delay() for _ in range(7)]
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0])


def test_huge_attempt_counts_do_not_overflow() -> None:
    backoff = Backoff(base=0.1, cap=2.0, rand=lambda: 1.0)
    backoff.attempt = 10**9
    assert backoff.next_delay() == 2.0


@pytest.mark.parametrize(
    ("base", "cap", "jitter"), [(0, 1, 1), (-1, 1, 1), (2, 1, 1), (1, 1, -0.1), (1, 1, 1.5)]
)
def test_invalid_parameters_are_refused(base: float, cap: float, jitter: float) -> None:
    with pytest.raises(ValueError, match="need"):
        BackoffPolicy(base, cap, jitter)


def test_attempts_count_from_zero() -> None:
    with pytest.raises(ValueError, match="from 0"):
        BackoffPolicy(1, 1).ceiling(-1)
