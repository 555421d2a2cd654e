"""Load generator: many users with two devices each, driven through SyncClient.

    bazel run //libs/client:loadgen -- --url ws://127.0.0.1:8080/session/connect \\
        --users 500 --seconds 10 --rate 500

Against a running stack (tools/run-local; tokens from the dev key). Each user's
"phone" creates a session and its "laptop" joins it; then:

- sustained: every phone updates back to back (one update in flight each) for
  `seconds`; reports acknowledged updates/s and change deliveries/s;
- fixed rate: `rate` updates/s in total, round-robin over the phones; reports
  p50/p99 of update sent → the other device (laptop) has the change.

`services/ws_edge:bench` uses the same functions on one edge process, next to a
bare `websockets` broadcast server.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from libs.backoff.backoff import Backoff
from libs.client.client import SyncClient

TokenFor = Callable[[str], str]


@dataclass
class Pair:
    """One user's two devices on one session."""

    user: str
    phone: SyncClient
    laptop: SyncClient
    sent_at: dict[str, float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    delivered: int = 0

    def watch(self) -> None:
        def on_laptop_change(message: dict[str, Any]) -> None:
            if message["type"] != "change":
                return
            self.delivered += 1
            sent = self.sent_at.pop(message.get("op_id", ""), None)
            if sent is not None:
                self.latencies.append(time.perf_counter() - sent)

        self.laptop.on_change(on_laptop_change)


async def connect_pairs(
    urls: Sequence[str], users: int, token_for: TokenFor, *, parallel: int = 50
) -> list[Pair]:
    """`users` pairs, connected and opened; at most `parallel` handshakes at once."""
    gate = asyncio.Semaphore(parallel)

    async def one(n: int) -> Pair:
        user = f"load-{n}"
        token = token_for(user)
        backoff = Backoff(base=0.5, cap=5.0)
        phone = SyncClient(list(urls), device_id="phone", token=token, backoff=backoff)
        laptop = SyncClient(list(urls), device_id="laptop", token=token, backoff=backoff)
        async with gate:
            session = await phone.open(initial_state={"n": 0})
            await laptop.open(session["session_id"])
        pair = Pair(user, phone, laptop)
        pair.watch()
        return pair

    return list(await asyncio.gather(*(one(n) for n in range(users))))


async def sustained(pairs: list[Pair], seconds: float) -> tuple[float, float]:
    """(acknowledged updates/s, change deliveries/s to the other device) at full speed."""
    stop = asyncio.Event()
    acked = 0
    delivered_before = sum(p.delivered for p in pairs)

    async def drive(pair: Pair) -> None:
        nonlocal acked
        n = 0
        while not stop.is_set():
            n += 1
            await pair.phone.update({"n": n})
            acked += 1

    tasks = [asyncio.create_task(drive(pair)) for pair in pairs]
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    stop.set()
    elapsed = time.perf_counter() - started
    counted = acked
    await asyncio.gather(*tasks)
    delivered = sum(p.delivered for p in pairs) - delivered_before
    return counted / elapsed, delivered / elapsed


async def settle(pairs: list[Pair], within: float = 60.0) -> None:
    """Until every laptop caught up with its phone: a phase must not pay the last one's debt."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while any(pair.laptop.version < pair.phone.version for pair in pairs):
        if loop.time() > deadline:
            raise TimeoutError("devices did not converge")
        await asyncio.sleep(0.1)


async def fixed_rate(pairs: list[Pair], rate: float, seconds: float) -> list[float]:
    """Latencies (s) update sent → other device has it, at `rate` updates/s in total."""
    await settle(pairs)
    for pair in pairs:
        pair.latencies.clear()
    interval = 1.0 / rate
    total = int(rate * seconds)
    loop = asyncio.get_running_loop()
    start = loop.time()
    pending: list[asyncio.Future[Any]] = []
    phase = uuid.uuid4().hex[:8]  # op_ids are idempotency keys: never reuse one
    for n in range(total):
        pair = pairs[n % len(pairs)]
        # The next update of a phone still waiting for its previous one queues
        # behind it (one in flight per device): at 1/s per phone that is rare.
        op_id = f"{phase}-{n}"
        pair.sent_at[op_id] = time.perf_counter()
        pending.append(pair.phone.update_nowait({"n": n}, op_id=op_id))
        delay = start + (n + 1) * interval - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
    await asyncio.gather(*pending)
    await asyncio.sleep(1.0)  # the last changes reach the laptops
    return [latency for pair in pairs for latency in pair.latencies]


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary_ms(latencies: Sequence[float]) -> str:
    return (
        f"p50 {percentile(latencies, 50) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 99) * 1000:.1f} ms "
        f"(n={len(latencies)}, mean {statistics.fmean(latencies) * 1000:.1f} ms)"
        if latencies
        else "no samples"
    )


async def close_pairs(pairs: list[Pair]) -> None:
    await asyncio.gather(
        *(client.close(leave=False) for pair in pairs for client in (pair.phone, pair.laptop)),
        return_exceptions=True,
    )


async def run(url: str, users: int, seconds: float, rate: float) -> None:
    from libs.client import dev_token

    directory = dev_token.key_dir()
    started = time.perf_counter()
    pairs = await connect_pairs([url], users, lambda user: dev_token.mint(directory, user, 3600))
    print(f"{2 * users} connections open in {time.perf_counter() - started:.1f} s")
    updates, deliveries = await sustained(pairs, seconds)
    print(f"sustained: {updates:.0f} updates/s acknowledged, {deliveries:.0f} deliveries/s")
    latencies = await fixed_rate(pairs, rate, seconds)
    print(f"at {rate:.0f} updates/s, update -> other device: {summary_ms(latencies)}")
    await close_pairs(pairs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="ws://127.0.0.1:8080/session/connect")
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=500.0)
    args = parser.parse_args(argv)
    asyncio.run(run(args.url, args.users, args.seconds, args.rate))
    return 0


if __name__ == "__main__":
    sys.exit(main())
