"""Drain batches: every connection once, increasing delays, all within the spread."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ws_edge.drain import plan_batches


@given(
    items=st.integers(0, 300),
    batches=st.integers(1, 20),
    spread=st.floats(0, 60),
    jitter=st.floats(0, 0.999),
)
def test_every_item_once_in_order_within_spread(
    items: int, batches: int, spread: float, jitter: float
) -> None:
    plan = plan_batches(list(range(items)), batches=batches, spread=spread, rand=lambda: jitter)
    closed = sorted(item for batch in plan for item in batch.items)
    assert closed == list(range(items))
    assert len(plan) == min(items, batches)
    assert all(batch.items for batch in plan)
    delays = [batch.delay for batch in plan]
    assert all(0 <= d < spread or spread == 0 for d in delays)
    if spread > 0:
        assert delays == sorted(delays)


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        plan_batches([1], batches=0, spread=1)
    with pytest.raises(ValueError):
        plan_batches([1], batches=1, spread=-1)
