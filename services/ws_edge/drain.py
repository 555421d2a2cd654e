"""The order and timing of closing connections on SIGTERM: pure.

Closing every connection at once would make every client reconnect at once,
on the replicas left: a thundering herd. Connections are split into batches
closed over `spread` seconds, each batch at a jittered moment of its slot.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Batch(Generic[T]):
    """Close `items` `delay` seconds after the drain started."""

    delay: float
    items: tuple[T, ...]


def plan_batches(
    items: Sequence[T],
    *,
    batches: int,
    spread: float,
    rand: Callable[[], float] = random.random,
) -> list[Batch[T]]:
    """Splits `items` into at most `batches` non-empty batches over [0, spread) seconds.

    Batch i starts in slot [i*spread/n, (i+1)*spread/n) at a uniformly random
    point of its first half, so delays increase strictly with i and every
    batch is closed before `spread` ends.
    """
    if batches < 1 or spread < 0:
        raise ValueError(f"batches must be >= 1 and spread >= 0, got {batches}, {spread}")
    count = min(batches, len(items))
    if count == 0:
        return []
    slot = spread / count
    plan = []
    for index in range(count):
        chunk = tuple(items[index::count])
        plan.append(Batch(index * slot + rand() * slot / 2, chunk))
    return plan
