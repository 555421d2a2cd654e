"""The SessionService servicer: gRPC in, Store/Cache calls, gRPC out.

Every call is scoped to the user of the bearer token it carries, which core
verifies itself (callers.py; any user id, libs/identity); a user it also
names (`x-syncbridge-user-bin`, UserUpdate.user_id) must be that one. Errors
map to status codes plus a `syncbridge-error` trailer (see session.proto).
Over 400 lines: one servicer, one thin method per RPC of session.proto, all
through one `_call` (user scope, metrics, error mapping); the rules live in
store.py, transitions.py, updates.py and cache.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias, TypeVar

import asyncpg
import grpc
from prometheus_client import CollectorRegistry, Counter

from libs.log.context import bind
from libs.metrics.rpc import rpc_metrics
from libs.ordering import resume
from libs.protocol import page_token
from services.session_core import events
from services.session_core.cache import Cache
from services.session_core.callers import (
    PermissionDenied,
    TokenVerifier,
    call_user,
    check_peer,
    update_user,
)
from services.session_core.records import Conflict, InvalidArgument, StoreError, UpdateRequest
from services.session_core.store import Store, Written
from services.session_core.updates import Applied, UpdateWriter
from syncbridge.session.v1 import session_pb2, session_pb2_grpc

log = logging.getLogger(__name__)
R = TypeVar("R")
# Every RPC here is unary: the context's request/response type parameters type only
# streaming reads and writes. A string, since grpc's class is generic in stubs only.
Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"

_BACKEND_DOWN = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
)

_STATUS = {
    "session_not_found": grpc.StatusCode.NOT_FOUND,
    "invalid_argument": grpc.StatusCode.INVALID_ARGUMENT,
    "too_large": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "lease_required": grpc.StatusCode.FAILED_PRECONDITION,
    "conflict": grpc.StatusCode.FAILED_PRECONDITION,
    "epoch_mismatch": grpc.StatusCode.FAILED_PRECONDITION,
    "device_cap": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "unauthenticated": grpc.StatusCode.UNAUTHENTICATED,
    "permission_denied": grpc.StatusCode.PERMISSION_DENIED,
    "deadline_exceeded": grpc.StatusCode.DEADLINE_EXCEEDED,
}

_CLAIM_ACTIONS = {
    session_pb2.PRESENCE_ACTION_JOIN: "join",
    session_pb2.PRESENCE_ACTION_HEARTBEAT: "heartbeat",
    session_pb2.PRESENCE_ACTION_LEAVE: "leave",
}


_BY_VALUE = {status.value[0]: status for status in grpc.StatusCode}
MAX_BATCH_UPDATES = 1000  # per ApplyUpdates call


def _deadline(context: Context) -> float | None:
    """The call's deadline on the time.monotonic() clock, or None."""
    remaining: float | None = context.time_remaining()
    if remaining is None or remaining > 365 * 24 * 3600:  # no deadline set
        return None
    return time.monotonic() + remaining


def refusal_for(error: BaseException) -> session_pb2.UpdateRefusal:
    """What a call answers for an error (and logs it): INTERNAL for one it did not expect."""
    if isinstance(error, StoreError):
        status = _STATUS.get(error.code, grpc.StatusCode.INTERNAL)
        log.info("refused", extra={"code": error.code})
        refusal = session_pb2.UpdateRefusal(
            status=status.value[0], code=error.code, message=error.message
        )
        if isinstance(error, Conflict):
            refusal.version, refusal.epoch = error.version, error.epoch
        return refusal
    if isinstance(error, _BACKEND_DOWN):
        # PostgreSQL unreachable: nothing committed, safe to retry elsewhere.
        log.warning("postgresql unavailable", extra={"error": type(error).__name__})
        return session_pb2.UpdateRefusal(
            status=grpc.StatusCode.UNAVAILABLE.value[0],
            code="unavailable",
            message="storage unavailable",
        )
    if isinstance(error, asyncpg.PostgresError):
        # Deadlock, serialization failure, cancelled statement, a value the
        # database refuses: rolled back, nothing applied.
        log.warning("transaction aborted", extra={"error": type(error).__name__})
        return session_pb2.UpdateRefusal(
            status=grpc.StatusCode.ABORTED.value[0],
            code="aborted",
            message="transaction aborted, retry",
        )
    # A bug, not a refusal: logged with its traceback; in ApplyUpdates it
    # fails this update only.
    log.error("unexpected error", exc_info=error)
    return session_pb2.UpdateRefusal(
        status=grpc.StatusCode.INTERNAL.value[0], code="internal", message="internal error"
    )


class DeviceCap(StoreError):
    """ClaimDevice JOIN of a new device while the user has the maximum online."""

    code = "device_cap"


class SessionService(session_pb2_grpc.SessionServiceServicer):
    """Implements syncbridge.session.v1.SessionService over Store and Cache."""

    def __init__(
        self,
        store: Store,
        cache: Cache,
        registry: CollectorRegistry,
        *,
        verifier: TokenVerifier,
        max_devices: int,
        allowed_clients: frozenset[str] | None = None,
        max_replay: int = 1000,
        updates: UpdateWriter | None = None,
    ) -> None:
        self._store = store
        self._verifier = verifier
        # With mTLS: the certificate identities admitted (None: plaintext, no check).
        self._allowed_clients = allowed_clients
        # The device cap is core's: a caller choosing its own could lift it.
        self._max_devices = max_devices
        self._cache = cache
        self._updates = updates or UpdateWriter(store, cache)
        # How long an ended session's tombstone outlives it in Redis: longer
        # than any write-back of its last snapshot could be delayed.
        self._tombstone_ttl = dt.timedelta(hours=1)
        self._max_replay = max_replay
        self._rpc = rpc_metrics(registry, "syncbridge_core_rpc")
        self._resumes = Counter(
            "syncbridge_core_resume_total",
            "ChangesSince answers by outcome (replayed or snapshot reason).",
            labelnames=("outcome",),
            registry=registry,
        )

    # -- plumbing ---------------------------------------------------------

    async def _call(
        self,
        method: str,
        context: Context,
        body: Callable[[str], Awaitable[R]],
        **fields: Any,
    ) -> R:
        # Values stay as gRPC gives them: a `-bin` key's value is bytes.
        metadata: dict[str, str | bytes] = {
            str(k): v for k, v in context.invocation_metadata() or ()
        }
        request_id = metadata.get("x-request-id", "")
        request_id = request_id if isinstance(request_id, str) else ""
        with (
            self._rpc.time(method) as timing,
            bind(rpc=method, request_id=request_id, **fields),
        ):
            try:
                # Before anything else: an unauthenticated caller learns nothing,
                # not even whether its request was well-formed.
                check_peer(self._allowed_clients, context.auth_context())
                user = call_user(self._verifier, metadata)
                return await body(user)
            except (StoreError, *_BACKEND_DOWN, asyncpg.PostgresError) as error:
                refusal = refusal_for(error)
                timing.code = _BY_VALUE[refusal.status].name
                trailers: list[tuple[str, str]] = []
                if isinstance(error, Conflict):
                    trailers = [
                        ("syncbridge-version", str(error.version)),
                        ("syncbridge-epoch", str(error.epoch)),
                    ]
                await self._abort(
                    context, _BY_VALUE[refusal.status], refusal.code, refusal.message, trailers
                )
            raise AssertionError("unreachable")  # abort() always raises

    @staticmethod
    async def _abort(
        context: Context,
        status: grpc.StatusCode,
        code: str,
        message: str,
        trailers: list[tuple[str, str]] | None = None,
    ) -> None:
        context.set_trailing_metadata((("syncbridge-error", code), *(trailers or [])))
        await context.abort(status, message)

    async def _snapshot(self, user: str, session_id: str) -> session_pb2.Session:
        cached = await self._cache.get_snapshot(session_id)
        # Reads do not extend a session's life: an expired one is a miss here
        # even if its cache entry is still warm.
        if (
            cached is not None
            and cached.user_id == user
            and cached.expires_at.ToDatetime(dt.UTC) > dt.datetime.now(dt.UTC)
        ):
            return cached
        message = events.session_message(await self._store.get(user, session_id))
        await self._cache.put_snapshot(message)
        return message

    async def _with_presence(self, message: session_pb2.Session) -> session_pb2.Session:
        online = await self._cache.online(message.session_id) or {}
        for device in message.devices:
            device.online = device.device_id in online
            if device.online:
                device.last_seen.FromDatetime(dt.datetime.now(dt.UTC))
        return message

    async def _after_commit(self, written: Written) -> session_pb2.Change:
        change = events.change_message(written.change)
        if not written.replayed:
            await self._cache.record(change, events.session_message(written.session))
        return change

    @staticmethod
    def _json_object(field: str, text: str, default: Any = None) -> Any:
        if not text:
            if default is not None:
                return default
            raise InvalidArgument(f"{field}: required")
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            # RecursionError: nesting deeper than the parser's stack, e.g. "[[[[…".
            raise InvalidArgument(f"{field}: not valid JSON") from None

    # -- RPCs ---------------------------------------------------------------

    async def OpenSession(
        self, request: session_pb2.OpenSessionRequest, context: Context
    ) -> session_pb2.OpenSessionResponse:
        async def body(user: str) -> session_pb2.OpenSessionResponse:
            if not request.device_id:
                raise InvalidArgument("device_id: required")
            initial = self._json_object("initial_state_json", request.initial_state_json, {})
            if not isinstance(initial, dict):
                raise InvalidArgument("initial_state_json: not a JSON object")
            written, record, created = await self._store.open(
                user, request.session_id, request.device_id, initial
            )
            if written is not None:
                await self._after_commit(written)
            message = events.session_message(record)
            return session_pb2.OpenSessionResponse(
                session=await self._with_presence(message), created=created
            )

        return await self._call("OpenSession", context, body, session_id=request.session_id)

    async def GetSession(
        self, request: session_pb2.GetSessionRequest, context: Context
    ) -> session_pb2.Session:
        async def body(user: str) -> session_pb2.Session:
            return await self._with_presence(await self._snapshot(user, request.session_id))

        return await self._call("GetSession", context, body, session_id=request.session_id)

    async def ApplyUpdate(
        self, request: session_pb2.ApplyUpdateRequest, context: Context
    ) -> session_pb2.ApplyUpdateResponse:
        async def body(user: str) -> session_pb2.ApplyUpdateResponse:
            item = session_pb2.UserUpdate(update=request)
            applied = await self._updates.submit(
                self._update_request(user, item, _deadline(context))
            )
            return session_pb2.ApplyUpdateResponse(
                outcome=applied.change.outcome, change=applied.change, replayed=applied.replayed
            )

        return await self._call(
            "ApplyUpdate", context, body, session_id=request.session_id, op_id=request.op_id
        )

    async def ApplyUpdates(
        self, request: session_pb2.ApplyUpdatesRequest, context: Context
    ) -> session_pb2.ApplyUpdatesResponse:
        with self._rpc.time("ApplyUpdates") as timing, bind(rpc="ApplyUpdates"):
            try:
                check_peer(self._allowed_clients, context.auth_context())
            except PermissionDenied as denied:
                timing.code = "PERMISSION_DENIED"
                await self._abort(
                    context, grpc.StatusCode.PERMISSION_DENIED, denied.code, denied.message
                )
            if len(request.updates) > MAX_BATCH_UPDATES:
                await self._abort(
                    context,
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "invalid_argument",
                    f"updates: at most {MAX_BATCH_UPDATES} per call",
                )
            results = [session_pb2.ApplyUpdateResult() for _ in request.updates]
            waiting: list[tuple[int, asyncio.Future[Applied]]] = []
            deadline = _deadline(context)
            for i, item in enumerate(request.updates):
                try:
                    user = update_user(self._verifier, item.token, item.user_id)
                    waiting.append(
                        (i, self._updates.submit(self._update_request(user, item, deadline)))
                    )
                except Exception as error:  # this update only, never its neighbours
                    results[i].refused.CopyFrom(refusal_for(error))
            # Futures, not tasks: every update joins the group commit at once,
            # and a cancelled call (deadline) cancels the ones not yet run.
            outcomes = await asyncio.gather(*(w for _, w in waiting), return_exceptions=True)
            for (i, _), outcome in zip(waiting, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    results[i].refused.CopyFrom(refusal_for(outcome))
                else:
                    results[i].applied.CopyFrom(
                        session_pb2.ApplyUpdateResponse(
                            outcome=outcome.change.outcome,
                            change=outcome.change,
                            replayed=outcome.replayed,
                        )
                    )
            return session_pb2.ApplyUpdatesResponse(results=results)

    def _update_request(
        self, user: str, item: session_pb2.UserUpdate, deadline: float | None
    ) -> UpdateRequest:
        """`item` as the store takes it, for `user` (verified by the caller of this)."""
        if item.timeout_ms > 0:  # its own deadline, inside the call's
            own = time.monotonic() + item.timeout_ms / 1000
            deadline = own if deadline is None else min(deadline, own)
        update = item.update
        return UpdateRequest(
            user_id=user,
            session_id=update.session_id,
            device_id=update.device_id,
            op_id=update.op_id,
            base_version=update.base_version,
            epoch=update.epoch,
            patch=self._json_object("patch_json", update.patch_json),
            require_lease=update.require_lease,
            expected_fence=update.expected_fence,
            deadline=deadline,
        )

    async def Handoff(
        self, request: session_pb2.HandoffRequest, context: Context
    ) -> session_pb2.HandoffResponse:
        async def body(user: str) -> session_pb2.HandoffResponse:
            written = await self._store.handoff(
                user,
                request.session_id,
                device_id=request.device_id,
                to_device=request.to_device,
                op_id=request.op_id,
            )
            message = await self._after_commit(written)
            return session_pb2.HandoffResponse(change=message, replayed=written.replayed)

        return await self._call(
            "Handoff", context, body, session_id=request.session_id, op_id=request.op_id
        )

    async def ChangesSince(
        self, request: session_pb2.ChangesSinceRequest, context: Context
    ) -> session_pb2.ChangesSinceResponse:
        async def body(user: str) -> session_pb2.ChangesSinceResponse:
            if request.version < 0 or request.epoch < 0:
                raise InvalidArgument("version: must not be negative")
            current = await self._store.get(user, request.session_id)
            limit = min(request.limit or self._max_replay, self._max_replay)
            oldest = await self._store.oldest_version(request.session_id, current.epoch)
            plan = resume.plan_resume(
                request.epoch, request.version, current.epoch, current.version, oldest, limit
            )
            if isinstance(plan, resume.Replay):
                changes = await self._cache.changes_after(
                    request.session_id,
                    current.epoch,
                    plan.from_version_exclusive,
                    plan.to_version_inclusive,
                )
                if changes is None:
                    records = await self._store.changes_between(
                        user,
                        request.session_id,
                        current.epoch,
                        plan.from_version_exclusive,
                        plan.to_version_inclusive,
                    )
                    changes = [events.change_message(r) for r in records]
                expected = list(
                    range(plan.from_version_exclusive + 1, plan.to_version_inclusive + 1)
                )
                if [c.version for c in changes] == expected:
                    self._resumes.labels(outcome="replayed").inc()
                    return session_pb2.ChangesSinceResponse(recovered=True, changes=changes)
                reason = "history_incomplete"
            else:
                reason = plan.reason
            self._resumes.labels(outcome=reason).inc()
            snapshot = await self._with_presence(events.session_message(current))
            return session_pb2.ChangesSinceResponse(recovered=False, snapshot=snapshot)

        return await self._call("ChangesSince", context, body, session_id=request.session_id)

    async def EndSession(
        self, request: session_pb2.EndSessionRequest, context: Context
    ) -> session_pb2.EndSessionResponse:
        async def body(user: str) -> session_pb2.EndSessionResponse:
            change = await self._store.end(user, request.session_id, request.device_id)
            await self._cache.end(
                session_pb2.Session(
                    session_id=change.session_id,
                    epoch=change.epoch,
                    version=change.version,
                    expires_at=events.timestamp(change.committed_at + self._tombstone_ttl),
                )
            )
            return session_pb2.EndSessionResponse(change=events.change_message(change))

        return await self._call("EndSession", context, body, session_id=request.session_id)

    async def ListSessions(
        self, request: session_pb2.ListSessionsRequest, context: Context
    ) -> session_pb2.ListSessionsResponse:
        async def body(user: str) -> session_pb2.ListSessionsResponse:
            size = min(max(request.page_size or 50, 1), 500)
            before = _page_start(request.page_token)
            records = await self._store.list_for_user(user, size + 1, before)
            token = ""
            if len(records) > size:
                records = records[:size]
                last = records[-1]
                token = page_token.encode(last.updated_at, last.session_id)
            return session_pb2.ListSessionsResponse(
                sessions=[
                    session_pb2.SessionSummary(
                        session_id=r.session_id,
                        version=r.version,
                        epoch=r.epoch,
                        active_device=r.active_device,
                        updated_at=events.timestamp(r.updated_at),
                        expires_at=events.timestamp(r.expires_at),
                    )
                    for r in records
                ],
                next_page_token=token,
            )

        return await self._call("ListSessions", context, body)

    async def UpdatePresence(
        self, request: session_pb2.UpdatePresenceRequest, context: Context
    ) -> session_pb2.PresenceResponse:
        async def body(user: str) -> session_pb2.PresenceResponse:
            record = await self._store.get(user, request.session_id)  # scopes to the user
            if request.device_id not in record.devices:
                raise InvalidArgument("device_id: not attached to the session")
            online = request.action != session_pb2.PRESENCE_ACTION_LEAVE
            await self._cache.touch_presence(request.session_id, request.device_id, online)
            snapshot = await self._with_presence(events.session_message(record))
            return session_pb2.PresenceResponse(devices=snapshot.devices)

        return await self._call("UpdatePresence", context, body, session_id=request.session_id)

    async def GetPresence(
        self, request: session_pb2.GetPresenceRequest, context: Context
    ) -> session_pb2.PresenceResponse:
        async def body(user: str) -> session_pb2.PresenceResponse:
            record = await self._store.get(user, request.session_id)
            snapshot = await self._with_presence(events.session_message(record))
            return session_pb2.PresenceResponse(devices=snapshot.devices)

        return await self._call("GetPresence", context, body, session_id=request.session_id)

    async def ClaimDevice(
        self, request: session_pb2.ClaimDeviceRequest, context: Context
    ) -> session_pb2.ClaimDeviceResponse:
        async def body(user: str) -> session_pb2.ClaimDeviceResponse:
            if not request.device_id:
                raise InvalidArgument("device_id: required")
            action = _CLAIM_ACTIONS.get(request.action)
            if action is None:
                raise InvalidArgument("action: JOIN, HEARTBEAT or LEAVE")
            claimed = await self._cache.claim_device(
                user, request.device_id, action, self._max_devices
            )
            if claimed is None:
                # Redis down: availability over the cap (the edge's own cap still holds).
                log.warning("device cap not enforced: redis unavailable", extra={"action": action})
                return session_pb2.ClaimDeviceResponse(devices_online=0)
            allowed, online = claimed
            if not allowed:
                raise DeviceCap(f"the user already has {online} devices online")
            return session_pb2.ClaimDeviceResponse(devices_online=online)

        return await self._call(
            "ClaimDevice",
            context,
            body,
            device_id=request.device_id,
            edge_id=request.edge_id,
        )


def _page_start(token: str) -> tuple[dt.datetime, str] | None:
    """Where a page starts: None for the first; any well-formed token is a position."""
    if not token:
        return None
    try:
        updated_at, session_id = page_token.decode(token)
    except page_token.BadPageToken as bad:
        raise InvalidArgument(str(bad)) from None
    return updated_at, str(session_id)
