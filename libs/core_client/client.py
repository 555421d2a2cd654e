"""The edge's gRPC client to session-core: a deadline on every call, retries only when safe.

Every call acts for a `Caller`: the user the edge verified and the device's
current bearer token, which travels as `authorization` metadata (in
ApplyUpdates, as each update's `token`) so that core verifies the user
itself and scopes all reads and writes to it. The user also travels, as a
cross-check core compares with the token's `sub`, in `x-syncbridge-user-bin`
(its UTF-8 bytes, so any user id fits; libs/identity). Failures become
`CoreError` with core's stable code (the `syncbridge-error` trailer), or
`unavailable` when core did not answer; see retry.py for what is retried.

Updates are the hot path: those of all connections that wait at the same
moment go to core in one ApplyUpdates call (group commit, libs/batching),
each with its own verified user and its own answer. A lone update still
leaves at once; under load one call carries many, which saves most of the
per-update CPU of a unary call on both sides. About 400 lines: one method
per RPC over one `_call` (deadline, retry, error mapping); the retry rules are
retry.py, the batching libs/batching.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from libs.auth.headers import AUTHORIZATION_METADATA, bearer_value
from libs.batching.group_commit import GroupCommit, Retry
from libs.core_client import retry
from libs.identity import identity
from libs.metrics.rpc import RpcMetrics
from syncbridge.session.v1 import session_pb2, session_pb2_grpc

USER_METADATA = identity.METADATA_KEY
# What a core from before libs/identity reads the user from: still sent for an
# id that ASCII metadata carries unchanged, so that the edges can roll out
# before core (session.proto's deploy order); core only cross-checks it.
LEGACY_USER_METADATA = "x-syncbridge-user"
SERVICE_NAME = "syncbridge.session.v1.SessionService"

_CODE_BY_STATUS = {
    grpc.StatusCode.UNAVAILABLE: "unavailable",
    grpc.StatusCode.DEADLINE_EXCEEDED: "unavailable",
    grpc.StatusCode.CANCELLED: "unavailable",
    grpc.StatusCode.INVALID_ARGUMENT: "invalid_argument",
    grpc.StatusCode.NOT_FOUND: "session_not_found",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "too_large",
}


def _legacy_metadata(user: str) -> tuple[tuple[str, str], ...]:
    """The ASCII user header, for a printable-ASCII id with no edge spaces (which
    HTTP/2 peers may trim); none for any other id, which it cannot carry."""
    if user.isascii() and user.isprintable() and user == user.strip():
        return ((LEGACY_USER_METADATA, user),)
    return ()


class Caller(NamedTuple):
    """Whom a call acts for: the token's user, and the token itself (the current one:
    a connection's token is refreshed mid-session, so ask for it at each call)."""

    user: str
    token: str


class ClientTls(NamedTuple):
    """mTLS to core: the CA core's certificate must chain to, this caller's own
    certificate and key (its identity is the certificate's SAN), all PEM, and the
    name core's certificate carries (the target is often an address)."""

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes
    server_name: str


def open_channel(
    target: str, options: list[tuple[str, Any]], tls: ClientTls | None = None
) -> grpc.aio.Channel:
    """A channel to core: plaintext, or mTLS with `tls`."""
    if tls is None:
        return grpc.aio.insecure_channel(target, options=options)
    credentials = grpc.ssl_channel_credentials(tls.ca_pem, tls.key_pem, tls.cert_pem)
    return grpc.aio.secure_channel(
        target, credentials, options=[*options, ("grpc.ssl_target_name_override", tls.server_name)]
    )


class CoreError(Exception):
    """A refused or failed call; `code` is core's stable code, or `unavailable`/`internal`."""

    def __init__(
        self, code: str, status: str, message: str, trailers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.status = status
        self.message = message
        self.trailers = trailers or {}


_STATUS_NAMES = {status.value[0]: status.name for status in grpc.StatusCode}


def _refused(refusal: session_pb2.UpdateRefusal) -> CoreError:
    """One refused update of an ApplyUpdates call, as ApplyUpdate would have failed."""
    trailers = {"syncbridge-error": refusal.code}
    if refusal.code in ("conflict", "epoch_mismatch"):
        trailers |= {
            "syncbridge-version": str(refusal.version),
            "syncbridge-epoch": str(refusal.epoch),
        }
    status = _STATUS_NAMES.get(refusal.status, "UNKNOWN")
    return CoreError(refusal.code or "internal", status, refusal.message or status, trailers)


class _Update(NamedTuple):
    """One update waiting for an ApplyUpdates call."""

    caller: Caller
    request: session_pb2.ApplyUpdateRequest
    deadline: float  # the client clock's time by which it must be answered


# An update with less time left than this is not worth sending: no round trip
# to core is that fast under load.
MIN_SEND_SECONDS = 0.03


def _too_late() -> CoreError:
    return CoreError("unavailable", "DEADLINE_EXCEEDED", "deadline exceeded before it was sent")


# Placeholder for an answer _apply_batch has not filled yet (never returned).
_NO_ANSWER = CoreError("internal", "UNKNOWN", "no answer")


def chunks(sizes: list[int], limit: int) -> list[list[int]]:
    """Indexes of `sizes` in order, grouped so that no group's total passes `limit`.

    An ApplyUpdates call must stay under core's gRPC message limit (which
    fits any single update): one item bigger than `limit` goes alone.
    """
    groups: list[list[int]] = []
    total = limit + 1
    for i, size in enumerate(sizes):
        if total + size > limit:
            groups.append([])
            total = 0
        groups[-1].append(i)
        total += size
    return groups


def _error_from(error: grpc.aio.AioRpcError) -> CoreError:
    trailers = {str(k): str(v) for k, v in (error.trailing_metadata() or ())}
    status = error.code()
    code = trailers.get("syncbridge-error") or _CODE_BY_STATUS.get(status, "internal")
    return CoreError(code, status.name, error.details() or status.name, trailers)


def channel_options(max_message_bytes: int) -> list[tuple[str, Any]]:
    """Keepalive within what core permits (pings no more often than every 5 s)."""
    return [
        ("grpc.keepalive_time_ms", 20_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        # Reconnect quickly after core restarts: the defaults back off to 2 min.
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 2_000),
    ]


class CoreClient:
    """SessionService calls for one verified user at a time."""

    def __init__(
        self,
        target: str,
        *,
        deadline: float,
        attempts: int,
        metrics: RpcMetrics,
        max_message_bytes: int = 8 * 1024 * 1024,
        max_batch: int = 256,
        max_inflight: int = 4,
        max_call_bytes: int = 256 * 1024,
        tls: ClientTls | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._channel = open_channel(target, channel_options(max_message_bytes), tls)
        self._stub = session_pb2_grpc.SessionServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)
        self._deadline = deadline
        self._attempts = attempts
        self._metrics = metrics
        self._sleep = sleep
        self._clock = clock
        self._updates: GroupCommit[_Update, session_pb2.ApplyUpdateResponse] = GroupCommit(
            self._apply_batch, max_batch=max_batch, max_inflight=max_inflight
        )
        self._max_call_bytes = max_call_bytes

    async def close(self) -> None:
        await self._channel.close()

    async def _call(
        self,
        method: str,
        request: Any,
        caller: Caller,
        *,
        key: str | None = None,
        request_id: str = "",
    ) -> Any:
        rpc = getattr(self._stub, method)
        metadata: tuple[tuple[str, str | bytes], ...] = (
            (AUTHORIZATION_METADATA, bearer_value(caller.token)),
            (USER_METADATA, identity.to_metadata(caller.user)),
            *_legacy_metadata(caller.user),
        )
        if request_id:
            metadata += (("x-request-id", request_id),)
        # One deadline for the whole call: attempts and backoffs all come out of it.
        budget = retry.Budget(self._deadline, self._clock)
        attempt = 0
        while True:
            attempt += 1
            with self._metrics.time(method) as timing:
                try:
                    return await rpc(request, metadata=metadata, timeout=budget.remaining())
                except grpc.aio.AioRpcError as error:
                    timing.code = error.code().name
                    failure = _error_from(error)
            delay = retry.backoff_seconds(attempt)
            if not (
                retry.should_retry(key or method, failure.status, attempt, self._attempts)
                and budget.allows(delay)
            ):
                raise failure
            await self._sleep(delay)

    async def healthy(self, probe_seconds: float = 0.5) -> bool:
        """True when core reports SERVING for SessionService."""
        try:
            answer = await self._health.Check(
                health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=probe_seconds
            )
        except grpc.aio.AioRpcError:
            return False
        return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)

    # -- SessionService ---------------------------------------------------

    async def open_session(
        self,
        caller: Caller,
        device_id: str,
        session_id: str | None = None,
        initial_state: dict[str, Any] | None = None,
    ) -> session_pb2.OpenSessionResponse:
        request = session_pb2.OpenSessionRequest(
            session_id=session_id or "",
            device_id=device_id,
            initial_state_json=json.dumps(initial_state) if initial_state is not None else "",
        )
        key = retry.method_key("OpenSession", attach=bool(session_id))
        response: session_pb2.OpenSessionResponse = await self._call(
            "OpenSession", request, caller, key=key
        )
        return response

    async def get_session(self, caller: Caller, session_id: str) -> session_pb2.Session:
        response: session_pb2.Session = await self._call(
            "GetSession", session_pb2.GetSessionRequest(session_id=session_id), caller
        )
        return response

    async def apply_update(
        self,
        caller: Caller,
        *,
        session_id: str,
        device_id: str,
        op_id: str,
        base_version: int,
        epoch: int,
        patch: dict[str, Any],
        require_lease: bool = False,
    ) -> session_pb2.ApplyUpdateResponse:
        request = session_pb2.ApplyUpdateRequest(
            session_id=session_id,
            device_id=device_id,
            op_id=op_id,
            base_version=base_version,
            epoch=epoch,
            patch_json=json.dumps(patch, separators=(",", ":")),
            require_lease=require_lease,
        )
        return await self._updates.submit(_Update(caller, request, self._clock() + self._deadline))

    async def _apply_batch(
        self, items: list[_Update]
    ) -> list[session_pb2.ApplyUpdateResponse | BaseException | Retry]:
        """The waiting updates in as few ApplyUpdates calls as message sizes allow."""
        now = self._clock()
        ordered: list[session_pb2.ApplyUpdateResponse | BaseException | Retry] = [
            _NO_ANSWER for _ in items
        ]
        live = []
        for i, item in enumerate(items):
            if item.deadline - now < MIN_SEND_SECONDS:
                ordered[i] = _too_late()  # it waited for a call until its deadline: never sent
            else:
                live.append(i)
        sizes = [items[i].request.ByteSize() for i in live]
        groups = [[live[j] for j in group] for group in chunks(sizes, self._max_call_bytes)]
        answers = await asyncio.gather(*(self._apply_call([items[i] for i in g]) for g in groups))
        for group, answer in zip(groups, answers, strict=True):
            for i, outcome in zip(group, answer, strict=True):
                ordered[i] = outcome
        return ordered

    async def _apply_call(
        self, items: list[_Update]
    ) -> list[session_pb2.ApplyUpdateResponse | BaseException | Retry]:
        """One ApplyUpdates call for the waiting updates, with ApplyUpdate's retry rules.

        Each update keeps its own deadline (counted from its submit) and tells
        core how long it still waits; the call lasts until the latest of them,
        so an update about to expire never cuts the others short. What core did
        not answer (the call failed UNAVAILABLE, or an update was refused
        UNAVAILABLE) is sent again while its deadline allows; op_ids make
        repeats safe. Refusals are final.
        """
        answers: list[session_pb2.ApplyUpdateResponse | BaseException | Retry] = [
            _NO_ANSWER for _ in items
        ]
        pending = list(range(len(items)))
        attempt = 0
        while True:
            now = self._clock()
            live = []
            for i in pending:
                if items[i].deadline - now >= MIN_SEND_SECONDS:
                    live.append(i)
                elif answers[i] is _NO_ANSWER:
                    answers[i] = _too_late()
            if not live:
                break
            attempt += 1
            call = session_pb2.ApplyUpdatesRequest(
                updates=[
                    session_pb2.UserUpdate(
                        user_id=items[i].caller.user,
                        token=items[i].caller.token,
                        update=items[i].request,
                        timeout_ms=int((items[i].deadline - now) * 1000),
                    )
                    for i in live
                ]
            )
            timeout = max(items[i].deadline for i in live) - now
            again: list[int] = []
            with self._metrics.time("ApplyUpdates") as timing:
                try:
                    response = await self._stub.ApplyUpdates(call, timeout=timeout)
                except grpc.aio.AioRpcError as error:
                    timing.code = error.code().name
                    failure = _error_from(error)
                    for i in live:
                        answers[i] = failure
                    again = live if failure.status in retry.RETRYABLE_CODES else []
                else:
                    for i, result in zip(live, response.results, strict=True):
                        if result.HasField("applied"):
                            answers[i] = result.applied
                            continue
                        answers[i] = refused = _refused(result.refused)
                        if refused.status in retry.RETRYABLE_CODES:
                            again.append(i)
            if not (
                again and retry.should_retry("ApplyUpdate", "UNAVAILABLE", attempt, self._attempts)
            ):
                break
            await self._sleep(retry.backoff_seconds(attempt))
            pending = again  # those out of time by now keep the failure they got
        return answers

    async def handoff(
        self, caller: Caller, *, session_id: str, device_id: str, to_device: str, op_id: str
    ) -> session_pb2.HandoffResponse:
        request = session_pb2.HandoffRequest(
            session_id=session_id, device_id=device_id, to_device=to_device, op_id=op_id
        )
        response: session_pb2.HandoffResponse = await self._call("Handoff", request, caller)
        return response

    async def changes_since(
        self, caller: Caller, session_id: str, epoch: int, version: int, limit: int = 0
    ) -> session_pb2.ChangesSinceResponse:
        """At most `limit` changes (0: core's default); when more are missing, a snapshot."""
        request = session_pb2.ChangesSinceRequest(
            session_id=session_id, epoch=epoch, version=version, limit=limit
        )
        response: session_pb2.ChangesSinceResponse = await self._call(
            "ChangesSince", request, caller
        )
        return response

    async def end_session(
        self, caller: Caller, *, session_id: str, device_id: str, op_id: str
    ) -> session_pb2.EndSessionResponse:
        request = session_pb2.EndSessionRequest(
            session_id=session_id, device_id=device_id, op_id=op_id
        )
        response: session_pb2.EndSessionResponse = await self._call("EndSession", request, caller)
        return response

    async def list_sessions(
        self, caller: Caller, page_size: int = 0, page_token: str = ""
    ) -> session_pb2.ListSessionsResponse:
        request = session_pb2.ListSessionsRequest(page_size=page_size, page_token=page_token)
        response: session_pb2.ListSessionsResponse = await self._call(
            "ListSessions", request, caller
        )
        return response

    async def update_presence(
        self,
        caller: Caller,
        *,
        session_id: str,
        device_id: str,
        edge_id: str,
        action: session_pb2.PresenceAction.ValueType,
    ) -> session_pb2.PresenceResponse:
        request = session_pb2.UpdatePresenceRequest(
            session_id=session_id, device_id=device_id, edge_id=edge_id, action=action
        )
        response: session_pb2.PresenceResponse = await self._call("UpdatePresence", request, caller)
        return response

    async def claim_device(
        self,
        caller: Caller,
        *,
        device_id: str,
        edge_id: str,
        action: session_pb2.PresenceAction.ValueType,
    ) -> session_pb2.ClaimDeviceResponse:
        """The user-wide device cap (core's setting): JOIN raises CoreError `device_cap`
        when refused."""
        request = session_pb2.ClaimDeviceRequest(
            device_id=device_id, edge_id=edge_id, action=action
        )
        response: session_pb2.ClaimDeviceResponse = await self._call("ClaimDevice", request, caller)
        return response
