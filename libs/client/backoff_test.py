"""Reconnect delays grow exponentially up to the cap, jittered over [0, ceiling]."""

from __future__ import annotations

import pytest

from libs.client.backoff import Backoff


def test_ceiling_doubles_up_to_the_cap() -> None:
    backoff = Backoff(base=0.1, cap=1.0, rand=lambda: 1.0)
    delays = [backoff.next_delay() for _ in range(7)]
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0])
    backoff.reset()
    assert backoff.next_delay() == pytest.approx(0.1)


def test_full_jitter() -> None:
    assert Backoff(base=0.5, rand=lambda: 0.0).next_delay() == 0.0
    assert Backoff(base=0.5, rand=lambda: 0.5).next_delay() == pytest.approx(0.25)


def test_huge_attempt_counts_do_not_overflow() -> None:
    backoff = Backoff(base=0.1, cap=2.0, rand=lambda: 1.0)
    backoff.attempt = 10_000
    assert backoff.next_delay() == 2.0


def test_invalid_parameters() -> None:
    with pytest.raises(ValueError):
        Backoff(base=0)
    with pytest.raises(ValueError):
        Backoff(base=2, cap=1)
