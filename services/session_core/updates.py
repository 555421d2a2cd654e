"""ApplyUpdate's write path: concurrent updates commit together (group commit).

A batch costs one Redis round trip for the op_id fast path, one PostgreSQL
transaction for every update in it (store.apply_updates), and one Redis
round trip to log the changes and refresh the snapshots; then each caller
gets its own answer. Every answer still comes only after its commit, and an
update refused (conflict, lease, a value PostgreSQL rejects) fails alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from libs.batching.group_commit import GroupCommit, Retry
from services.session_core import events
from services.session_core.cache import Cache
from services.session_core.records import UpdateRequest
from services.session_core.store import Store
from syncbridge.session.v1 import session_pb2


@dataclass(frozen=True)
class Applied:
    """An update's committed change; `replayed` when its op_id had already applied."""

    change: session_pb2.Change
    replayed: bool


class UpdateWriter:
    """Applies updates through a GroupCommit over the cache and the store."""

    def __init__(
        self,
        store: Store,
        cache: Cache,
        *,
        max_batch: int = 128,
        max_inflight: int = 2,
        on_batch: Callable[[int], None] = lambda size: None,
    ) -> None:
        self._store = store
        self._cache = cache
        self._on_batch = on_batch
        self.batches: GroupCommit[UpdateRequest, Applied] = GroupCommit(
            self._run, max_batch=max_batch, max_inflight=max_inflight
        )

    def submit(self, request: UpdateRequest) -> asyncio.Future[Applied]:
        """Checks one update at once (raising its refusal) and joins it to a batch.

        The answer, awaited: its commit (or the replay of its op_id), or its
        refusal raised.
        """
        self._store.check_update(request)
        return self.batches.submit(request)

    async def _run(self, requests: list[UpdateRequest]) -> list[Applied | BaseException | Retry]:
        self._on_batch(len(requests))
        answers: list[Applied | BaseException | Retry | None] = [None] * len(requests)
        cached = await self._cache.op_results([(r.session_id, r.op_id) for r in requests])
        todo: list[int] = []
        for i, (request, change) in enumerate(zip(requests, cached, strict=True)):
            if (
                change is not None
                and change.user_id == request.user_id
                and change.kind == session_pb2.CHANGE_KIND_UPDATE
            ):
                answers[i] = Applied(change, replayed=True)
            else:
                todo.append(i)
        fresh: list[tuple[session_pb2.Change, session_pb2.Session | None]] = []
        if todo:
            try:
                written = await self._store.apply_updates([requests[i] for i in todo])
            except Exception as error:  # PostgreSQL unreachable, say: these updates only
                written = [error for _ in todo]
            for i, outcome in zip(todo, written, strict=True):
                if isinstance(outcome, BaseException | Retry):
                    answers[i] = outcome
                    continue
                change = events.change_message(outcome.change)
                answers[i] = Applied(change, outcome.replayed)
                if not outcome.replayed:
                    fresh.append((change, events.session_message(outcome.session)))
        await self._cache.record_many(fresh)
        return [answer for answer in answers if answer is not None]
