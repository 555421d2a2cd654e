"""Token buckets refill at their rate; refusals in a row end in a disconnect."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.ws_edge.ratelimit import MessageLimiter, TokenBucket, Verdict


def test_burst_then_rate() -> None:
    bucket = TokenBucket(rate=10, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.retry_after(0.0) == pytest.approx(0.1)
    assert not bucket.take(0.05)
    assert bucket.take(0.1)
    assert bucket.take(10.0) and bucket.take(10.0) and bucket.take(10.0)  # capped at burst
    assert not bucket.take(10.0)


def test_clock_going_backwards_mints_nothing() -> None:
    bucket = TokenBucket(rate=1, burst=1, now=100.0)
    assert bucket.take(100.0)
    assert not bucket.take(50.0)
    assert not bucket.take(100.5)
    assert bucket.take(101.0)


def test_invalid_parameters() -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate=0, burst=1, now=0)
    with pytest.raises(ValueError):
        TokenBucket(rate=1, burst=0.5, now=0)
    with pytest.raises(ValueError):
        MessageLimiter(1, 1, -1, 0)


def test_refusals_in_a_row_disconnect() -> None:
    limiter = MessageLimiter(rate=1, burst=2, max_refused=3, now=0.0)
    verdicts = [limiter.check(0.0).verdict for _ in range(6)]
    assert verdicts == [Verdict.ALLOW, Verdict.ALLOW] + [Verdict.REFUSE] * 3 + [Verdict.DISCONNECT]


def test_an_allowed_message_forgives_refusals() -> None:
    limiter = MessageLimiter(rate=1, burst=1, max_refused=2, now=0.0)
    assert limiter.check(0.0).verdict is Verdict.ALLOW
    refused = limiter.check(0.0)
    assert refused.verdict is Verdict.REFUSE and refused.retry_after == pytest.approx(1.0)
    assert limiter.check(0.0).verdict is Verdict.REFUSE
    assert limiter.check(1.0).verdict is Verdict.ALLOW
    assert limiter.check(1.0).verdict is Verdict.REFUSE
    assert limiter.check(1.0).verdict is Verdict.REFUSE
    assert limiter.check(1.0).verdict is Verdict.DISCONNECT


@settings(max_examples=60, deadline=None)
@given(
    rate=st.floats(0.5, 100),
    burst=st.integers(1, 50),
    gaps=st.lists(st.floats(0, 0.5), min_size=1, max_size=200),
)
def test_never_more_than_burst_plus_rate_times_elapsed(
    rate: float, burst: int, gaps: list[float]
) -> None:
    bucket = TokenBucket(rate, burst, now=0.0)
    now, taken = 0.0, 0
    for gap in gaps:
        now += gap
        taken += bucket.take(now)
        assert taken <= burst + rate * now + 1e-6
