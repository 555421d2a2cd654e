"""One device's WebSocket: the I/O around the connection state machine, device to core.

Which message may run when is connection_state.py (pure); what the connection
may call is connection_host.py (a Protocol the Replica satisfies). Over 400
lines for a reason: one class whose handlers share the connection's ordering
lock and its single close path; the pure parts (phases, rate limit, delivery
order, outbound queue, wire format) are modules of their own.

Three tasks per connection: the reader (handles one message at a time, in
order, so a device's updates reach core in the order it sent them), the
writer (outbound.py) and a token-expiry watch; presence heartbeats and the
session's backfills join later. Anything the server decides to end goes
through `close`, which flushes what is queued, sends the close code and
wakes `serve`.

No failure is silent: every task the connection owns is spawned through its
watched `OwnedTasks`, so one that raises (a frame that cannot be sent, a
bug) is logged, counted (`syncbridge_edge_connection_failures_total{task}`)
and closes the connection with 1011; a reply that cannot be encoded does the
same. Closes the WebSocket layer makes itself (1002, 1009) are counted too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any

from sanic.exceptions import WebsocketClosed
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from libs.auth.claims import Claims
from libs.auth.errors import AuthError
from libs.core_client.client import Caller, CoreError
from libs.log.context import bind
from libs.protocol.codes import CloseCode, ErrorCode
from libs.tasks.owned import OwnedTasks
from services.ws_edge import convert, protocol
from services.ws_edge.connection_host import ConnectionHost
from services.ws_edge.connection_state import ConnectionState
from services.ws_edge.delivery import Delivery
from services.ws_edge.outbound import Frame, Outbound
from services.ws_edge.ratelimit import MessageLimiter, Verdict
from syncbridge.session.v1 import session_pb2

log = logging.getLogger(__name__)

# core's stable codes as protocol error codes (libs/core_client CoreError.code).
_CORE_CODES = {
    "session_not_found": ErrorCode.SESSION_NOT_FOUND,
    "conflict": ErrorCode.CONFLICT,
    "lease_required": ErrorCode.LEASE_REQUIRED,
    "epoch_mismatch": ErrorCode.EPOCH_MISMATCH,
    "too_large": ErrorCode.TOO_LARGE,
    "invalid_argument": ErrorCode.INVALID_FIELD,
    "unavailable": ErrorCode.UNAVAILABLE,
    "deadline_exceeded": ErrorCode.UNAVAILABLE,  # core gave up on it: nothing applied
    # Core verifies the token too: refused there, it expired (the edge keeps the
    # connection open for a refresh for longer than core's leeway): refresh it.
    "unauthenticated": ErrorCode.TOKEN_EXPIRING,
}


def error_code_for(core_code: str) -> ErrorCode:
    return _CORE_CODES.get(core_code, ErrorCode.INTERNAL)


def replay_limit(outbound_queue: int) -> int:
    """How many changes one ChangesSince may replay: half the outbound queue, so a
    replay (plus the frames around it) never overflows it; more missing is a snapshot."""
    return max(1, outbound_queue // 2)


class Connection:
    """A device connected to this replica (its `host`)."""

    def __init__(self, host: ConnectionHost, ws: Any, claims: Claims, token: str) -> None:
        self._host = host
        self._config = host.config
        self._metrics = host.metrics
        self._ws = ws
        self.connection_id = uuid.uuid4().hex[:12]
        self.user_id = claims.sub
        # Phase, device, session and close code: the pure state machine.
        self._state = ConnectionState(time.monotonic() + self._config.hello_timeout_seconds)
        self._expires_at = float(claims.exp)
        # Watched: a task of this connection that fails closes it (1011), see _task_failed.
        self._tasks = OwnedTasks(log, "connection", on_failure=self._task_failed)
        # Forwarded to core on every call, which verifies the user itself; `refresh`
        # replaces it.
        self._token = token
        self._outbound = Outbound(
            ws,
            capacity=self._config.outbound_queue,
            max_bytes=self._config.outbound_queue_bytes,
            send_timeout=self._config.send_timeout_seconds,
            on_slow=self._slow_consumer,
            on_sent=self._sent,
            spawn=lambda coro: self._tasks.spawn(coro, name="writer"),
            gone=self._socket_gone,
        )
        self._limiter = MessageLimiter(
            self._config.rate_per_second,
            float(self._config.rate_burst),
            self._config.rate_max_refused,
            time.monotonic(),
        )
        self._admitted = False
        # Set when a newer connection of the same device took over (closed 4010): this
        # one then leaves the device's presence and claim to the newer one.
        self._replaced = False
        self._delivery: Delivery | None = None
        self._handling = asyncio.Lock()
        self._refreshed = asyncio.Event()
        self._done = asyncio.Event()
        self._presence_task: asyncio.Task[None] | None = None

    @property
    def device_id(self) -> str:
        return self._state.device_id

    @property
    def caller(self) -> Caller:
        """Whom core calls act for: this user, with the token in force right now."""
        return Caller(self.user_id, self._token)

    @property
    def close_code(self) -> int | None:
        return self._state.close_code

    @property
    def _session_id(self) -> str | None:
        return self._state.session_id

    # -- lifecycle ----------------------------------------------------------

    async def serve(self) -> None:
        """Runs until the device or the server ends the connection, then cleans up."""
        with bind(connection_id=self.connection_id, user_id=self.user_id):
            self._outbound.start()
            self._tasks.spawn(self._read_loop(), name="read")
            self._tasks.spawn(self._watch_expiry(), name="token-expiry")
            try:
                await self._done.wait()
            finally:
                await self._cleanup()

    async def _cleanup(self) -> None:
        self._count_socket_close()
        self._outbound.stop()
        self._tasks.cancel(keep=asyncio.current_task())
        self._detach_session(presence_leave=not self._replaced)
        if self._admitted:
            self._admitted = False
            self._host.hub.remove(self)
            self._host.background(self._host.fanout.unsubscribe(self.user_id))
            if not self._replaced:
                self._host.background(self._claim_device(session_pb2.PRESENCE_ACTION_LEAVE))

    async def close(
        self,
        code: CloseCode,
        reason: str,
        *,
        flush_timeout: float = 1.0,
        close_timeout: float | None = None,
    ) -> None:
        """Flushes queued frames (briefly), sends `code` and ends the connection."""
        if not self._state.close(code):
            return
        self._metrics.closes.labels(code=str(int(code))).inc()
        await self._send_close(code, reason, flush_timeout, close_timeout)

    async def _send_close(
        self, code: CloseCode, reason: str, flush_timeout: float, close_timeout: float | None
    ) -> None:
        if close_timeout is None:
            close_timeout = self._config.send_timeout_seconds
        flushed = await self._outbound.flush(flush_timeout)
        self._outbound.stop()
        if not flushed:
            # A peer not reading (or a dead writer): Sanic's close() would wait for the
            # socket to drain, and a close frame cut off there is lost for good. Written
            # straight behind what the socket holds, it reaches a peer that reads again.
            self._abort(code, reason, linger=close_timeout)
            return
        try:
            await asyncio.wait_for(self._ws.close(code, reason), close_timeout)
        except Exception:
            self._abort(code, reason, linger=close_timeout)
        self._done.set()

    async def going_away(self, deadline: float | None = None) -> None:
        """Drain: let the message being handled finish (its ack goes out), then close 1001.

        `deadline` (loop time) bounds the whole of it: waiting for the handler, the
        flush and the close handshake share what is left; `hard_close` is the fallback.
        """
        loop = asyncio.get_running_loop()
        budget = float("inf") if deadline is None else max(0.0, deadline - loop.time())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(self._config.core_deadline_seconds * 2, budget)):
                await self._handling.acquire()
        left = float("inf") if deadline is None else max(0.0, deadline - loop.time())
        await self.close(
            CloseCode.GOING_AWAY,
            "server draining",
            flush_timeout=min(1.0, left / 2),
            close_timeout=min(self._config.send_timeout_seconds, left),
        )

    async def replace(self) -> None:
        """A newer connection of the same device arrived on this replica: close 4010."""
        if self.close_code is not None:
            return
        self._replaced = True
        log.info("replaced by a newer connection of the same device")
        await self.close(CloseCode.REPLACED, "replaced by a newer connection")

    @property
    def closed(self) -> bool:
        """The connection has ended (its cleanup may still run)."""
        return self._done.is_set()

    def hard_close(self, code: CloseCode, reason: str, *, linger: float) -> None:
        """Ends the connection now, whatever it is doing: the close frame is written
        without waiting (behind anything unread) and the socket dropped after `linger`."""
        if self._state.close(code):
            self._metrics.closes.labels(code=str(int(code))).inc()
        self._outbound.stop()
        self._abort(code, reason, linger=linger)

    def _abort(self, code: int, reason: str, *, linger: float | None = None) -> None:
        """Queues the close frame without waiting and drops the socket after a linger."""
        with contextlib.suppress(Exception):
            self._ws.fail_connection(code, reason)
        transport = getattr(getattr(self._ws, "io_proto", None), "transport", None)
        if transport is not None:
            # The close frame sits behind whatever the peer did not read: give it the
            # send timeout (or `linger`) to get out, then free the buffers.
            asyncio.get_running_loop().call_later(
                self._config.send_timeout_seconds if linger is None else linger,
                transport.abort,
            )
        self._done.set()

    # -- failures -----------------------------------------------------------

    def _task_failed(self, task: asyncio.Task[Any], error: BaseException) -> None:
        """A task of this connection raised (OwnedTasks logged it): count, close 1011."""
        self._fail(task.get_name(), error, logged=True)

    def _fail(self, where: str, error: BaseException, *, logged: bool = False) -> None:
        self._metrics.connection_failures.labels(task=where).inc()
        if not logged:
            log.error(
                "connection failed", extra={"task": where, "error": repr(error)}, exc_info=error
            )
        if not self._state.close(CloseCode.INTERNAL_ERROR):
            return  # already closing: the close under way ends it
        self._metrics.closes.labels(code=str(int(CloseCode.INTERNAL_ERROR))).inc()
        # Owned by the replica, not by this connection: cleanup must not cancel it.
        self._host.background(
            self._send_close(CloseCode.INTERNAL_ERROR, "internal error", 1.0, None)
        )

    def _socket_gone(self) -> bool:
        """The WebSocket is closing or closed (a send failing then is no fault)."""
        if getattr(self._ws, "ws_proto", None) is None:
            return True
        transport = getattr(getattr(self._ws, "io_proto", None), "transport", None)
        return (
            self._ws.ws_proto.state is not State.OPEN
            or transport is None
            or (transport.is_closing())
        )

    def _count_socket_close(self) -> None:
        """A close the WebSocket layer sent by itself (a frame over the size limit, broken
        framing): the connection did not choose it, so it is logged and counted here."""
        ws_proto = getattr(self._ws, "ws_proto", None)
        sent = getattr(ws_proto, "close_sent", None)
        if sent is None or getattr(ws_proto, "close_rcvd_then_sent", False):
            return  # no close sent, or the peer's own close echoed
        if self._state.close(sent.code):
            log.info("closed by the WebSocket layer", extra={"code": sent.code})
            self._metrics.closes.labels(code=str(sent.code)).inc()

    def _slow_consumer(self, reason: str) -> None:
        if not self._state.close(CloseCode.SLOW_CONSUMER):
            return
        log.info("slow consumer disconnected", extra={"reason": reason})
        self._metrics.slow_consumers.inc()
        self._metrics.closes.labels(code=str(int(CloseCode.SLOW_CONSUMER))).inc()
        self._abort(CloseCode.SLOW_CONSUMER, "slow consumer")

    # -- reading ------------------------------------------------------------

    async def _read_loop(self) -> None:
        """Reads until the peer or the server ends the connection. A failure in here
        propagates: the watched task closes the connection 1011 (_task_failed)."""
        while self.close_code is None:
            try:
                frame = await self._ws.recv(self._state.recv_timeout(time.monotonic()))
            except asyncio.CancelledError:
                # Sanic cancels recv() when the peer's close frame or EOF arrives.
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
                break
            except (ConnectionClosed, WebsocketClosed):
                break
            if frame is None:
                if self._state.hello_overdue(time.monotonic()):
                    await self.close(CloseCode.HELLO_TIMEOUT, "no hello in time")
                continue
            async with self._handling:
                if self.close_code is None:
                    await self._handle(frame)
        self._done.set()

    async def _handle(self, frame: str | bytes) -> None:
        decision = self._limiter.check(time.monotonic())
        if decision.verdict is Verdict.DISCONNECT:
            self._metrics.messages.labels(type="limited", direction="in").inc()
            await self.close(CloseCode.RATE_LIMITED, "rate limited")
            return
        if decision.verdict is Verdict.REFUSE:
            self._metrics.messages.labels(type="limited", direction="in").inc()
            self._error(
                ErrorCode.RATE_LIMITED,
                "too many messages",
                details={"retry_after": round(decision.retry_after, 3)},
            )
            return
        try:
            message = protocol.parse(frame)
        except protocol.NotText:
            self._metrics.messages.labels(type="invalid", direction="in").inc()
            log.info("text frame is not UTF-8")
            await self.close(CloseCode.INVALID_PAYLOAD, "text frame is not UTF-8")
            return
        except protocol.ProtocolError as problem:
            self._metrics.messages.labels(type="invalid", direction="in").inc()
            self._push_error(protocol.from_protocol_error(problem), problem.code)
            return
        kind = type(message).__name__.lower()
        self._metrics.messages.labels(type=kind, direction="in").inc()
        refusal = self._state.refusal(message)
        if refusal is not None:
            self._error(refusal.code, refusal.message, ref=message.ref)
            return
        try:
            await self._dispatch(message)
        except CoreError as error:
            details: dict[str, Any] = {}
            op_id = getattr(message, "op_id", None)
            if op_id:
                details["op_id"] = op_id
            if error.code == "conflict":
                details.update(await self._conflict_details(error))
            self._error(error_code_for(error.code), error.message, ref=message.ref, details=details)

    async def _dispatch(self, message: protocol.ClientMessage) -> None:
        match message:
            case protocol.Hello():
                await self._hello(message)
            case protocol.Open():
                await self._open(message)
            case protocol.Resume():
                await self._resume(message)
            case protocol.Update():
                await self._update(message)
            case protocol.Handoff():
                await self._handoff(message)
            case protocol.Refresh():
                await self._refresh(message)
            case protocol.Leave():
                await self._leave(message)

    # -- handlers -----------------------------------------------------------

    async def _hello(self, message: protocol.Hello) -> None:
        self._state.greeted(message.device_id)
        # The cap across replicas (core), then this replica's own count: the fallback
        # when core could not count.
        if not await self._claim_device(session_pb2.PRESENCE_ACTION_JOIN):
            await self.close(CloseCode.DEVICE_LIMIT, "too many devices")
            return
        admitted, replaced = self._host.hub.admit(self, self._config.max_devices_per_user)
        if not admitted:
            await self.close(CloseCode.DEVICE_LIMIT, "too many devices")
            return
        for older in replaced:
            self._host.background(older.replace())
        try:
            await self._host.fanout.subscribe(self.user_id)
        except BaseException:
            self._host.hub.remove(self)
            raise
        self._admitted = True
        self._tasks.spawn(self._device_heartbeat(), name="device-heartbeat")
        self._push(
            protocol.welcome(
                user_id=self.user_id,
                device_id=self.device_id,
                edge_id=self._host.edge_id,
                ping_interval_seconds=self._config.ping_interval_seconds,
                token_expires_at=int(self._expires_at),
                limits={
                    "max_frame_bytes": self._config.max_frame_bytes,
                    "rate_per_second": self._config.rate_per_second,
                    "rate_burst": self._config.rate_burst,
                    "max_devices_per_user": self._config.max_devices_per_user,
                },
                ref=message.ref,
            )
        )

    async def _claim_device(self, action: session_pb2.PresenceAction.ValueType) -> bool:
        """Tells core the device joins, is still here or leaves; False only when a JOIN
        is refused for the cap. Core unreachable: allowed (availability over the cap)."""
        try:
            await self._host.core.claim_device(
                self.caller,
                device_id=self.device_id,
                edge_id=self._host.edge_id,
                action=action,
            )
        except CoreError as error:
            if error.code == "device_cap" and action == session_pb2.PRESENCE_ACTION_JOIN:
                return False
            log.warning("device claim not recorded", extra={"error": repr(error)})
        return True

    async def _device_heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self._config.presence_interval_seconds)
            await self._claim_device(session_pb2.PRESENCE_ACTION_HEARTBEAT)

    def _new_delivery(self, session_id: str) -> Delivery:
        core = self._host.core
        limit = replay_limit(self._config.outbound_queue)
        delivery = Delivery(
            session_id,
            emit_change=self._emit_change,
            emit_snapshot=self._emit_backfill_snapshot,
            # `self.caller` at each fetch: the token may have been refreshed since.
            fetch_since=lambda epoch, version: core.changes_since(
                self.caller, session_id, epoch, version, limit
            ),
            fetch_snapshot=lambda: core.get_session(self.caller, session_id),
            on_failure=self._delivery_failed,
            on_duplicate=self._metrics.duplicates.inc,
            emit_backfilled=self._emit_backfilled_change,
            spawn=lambda coro: self._tasks.spawn(coro, name="backfill"),
        )
        self._state.attach(session_id)
        self._delivery = delivery
        self._host.hub.watch(self, delivery)
        return delivery

    async def _open(self, message: protocol.Open) -> None:
        core = self._host.core
        if message.session_id:
            # Watch first (changes are stashed) so nothing committed after the read is missed.
            delivery = self._new_delivery(message.session_id)
            try:
                opened = await core.open_session(
                    self.caller, self.device_id, message.session_id, message.initial_state
                )
            except CoreError:
                self._detach_session(presence_leave=False)
                raise
        else:
            opened = await core.open_session(
                self.caller, self.device_id, None, message.initial_state
            )
            delivery = self._new_delivery(opened.session.session_id)
        session = opened.session
        self._push(
            protocol.snapshot(convert.session_view(session), recovered=True, ref=message.ref)
        )
        delivery.start(session.epoch, session.version)
        await self._joined()

    async def _resume(self, message: protocol.Resume) -> None:
        delivery = self._new_delivery(message.session_id)
        try:
            answer = await self._host.core.changes_since(
                self.caller,
                message.session_id,
                message.epoch,
                message.version,
                replay_limit(self._config.outbound_queue),
            )
        except CoreError:
            self._detach_session(presence_leave=False)
            raise
        if answer.recovered:
            replayed = delivery.start(message.epoch, message.version, answer.changes)
            position = delivery.position or (message.epoch, message.version)
            self._metrics.resumes.labels(outcome="replayed").inc()
            self._push(
                protocol.ack(
                    "resume",
                    ref=message.ref,
                    session_id=message.session_id,
                    epoch=position[0],
                    version=position[1],
                    changes=replayed,
                )
            )
        else:
            snap = answer.snapshot
            self._metrics.resumes.labels(outcome="snapshot").inc()
            self._push(
                protocol.snapshot(
                    convert.session_view(snap),
                    recovered=False,
                    reason="history_unavailable",
                    ref=message.ref,
                )
            )
            delivery.start(snap.epoch, snap.version)
        await self._joined()

    async def _update(self, message: protocol.Update) -> None:
        session_id = self._require_session()
        started = time.monotonic()
        result = await self._host.core.apply_update(
            self.caller,
            session_id=session_id,
            device_id=self.device_id,
            op_id=message.op_id,
            base_version=message.base_version,
            epoch=message.epoch,
            patch=message.patch,
            require_lease=message.require_lease,
        )
        self._push(
            protocol.ack(
                "update",
                ref=message.ref,
                op_id=message.op_id,
                session_id=session_id,
                epoch=result.change.epoch,
                version=result.change.version,
                outcome=convert.OUTCOME_NAMES.get(result.outcome, "applied"),
                replayed=result.replayed,
            )
        )
        self._metrics.update_ack_latency.observe(time.monotonic() - started)

    async def _handoff(self, message: protocol.Handoff) -> None:
        session_id = self._require_session()
        result = await self._host.core.handoff(
            self.caller,
            session_id=session_id,
            device_id=self.device_id,
            to_device=message.to_device,
            op_id=message.op_id,
        )
        self._push(
            protocol.ack(
                "handoff",
                ref=message.ref,
                op_id=message.op_id,
                session_id=session_id,
                epoch=result.change.epoch,
                version=result.change.version,
                active_device=result.change.active_device,
                lease_fence=result.change.lease_fence,
                replayed=result.replayed,
            )
        )

    async def _refresh(self, message: protocol.Refresh) -> None:
        try:
            claims = self._host.verifier.verify(message.token)
        except AuthError as error:
            self._error(ErrorCode.TOKEN_INVALID, str(error.code), ref=message.ref)
            return
        if claims.sub != self.user_id:
            log.warning("refresh with another user's token")
            await self.close(CloseCode.FORBIDDEN, "token of another user")
            return
        self._expires_at = float(claims.exp)
        self._token = message.token
        self._refreshed.set()
        self._push(protocol.ack("refresh", ref=message.ref, token_expires_at=claims.exp))

    async def _leave(self, message: protocol.Leave) -> None:
        self._push(protocol.ack("leave", ref=message.ref))
        await self.close(CloseCode.NORMAL, "left")

    # -- sessions, presence -------------------------------------------------

    def _require_session(self) -> str:
        """The open session; the state machine refused the message when there is none."""
        session_id = self._state.session_id
        if session_id is None:
            raise RuntimeError("no session: ConnectionState.refusal let the message through")
        return session_id

    async def _joined(self) -> None:
        await self._report_presence(session_pb2.PRESENCE_ACTION_JOIN)
        self._presence_task = self._tasks.spawn(self._heartbeat(), name="presence-heartbeat")

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self._config.presence_interval_seconds)
            await self._report_presence(session_pb2.PRESENCE_ACTION_HEARTBEAT)
            await self._check_position()

    async def _check_position(self) -> None:
        """A lost event (queue overflow, dropped message) with no later change after it
        leaves no hole to notice: ask core where the session is, backfill if behind."""
        delivery, session_id = self._delivery, self._session_id
        if delivery is None or session_id is None or delivery.syncing:
            return
        try:
            current = await self._host.core.get_session(self.caller, session_id)
        except CoreError as error:
            log.info("position not checked", extra={"error": repr(error)})
            return
        if delivery is self._delivery and delivery.check(current.epoch, current.version):
            self._metrics.backfills.labels(reason="position_check").inc()

    async def _report_presence(
        self, action: session_pb2.PresenceAction.ValueType, session_id: str | None = None
    ) -> None:
        """Tells core, then every replica serving the user; failures only cost freshness."""
        session_id = session_id or self._session_id
        if session_id is None:
            return
        try:
            answer = await self._host.core.update_presence(
                self.caller,
                session_id=session_id,
                device_id=self.device_id,
                edge_id=self._host.edge_id,
                action=action,
            )
            if action != session_pb2.PRESENCE_ACTION_HEARTBEAT:
                await self._host.fanout.publish_presence(
                    self.user_id, session_id, convert.devices(answer.devices)
                )
        except Exception as error:
            log.info("presence not reported", extra={"error": repr(error)})

    def _detach_session(self, *, presence_leave: bool) -> None:
        session_id = self._session_id
        if session_id is None:
            return
        if self._delivery is not None:
            self._delivery.close()
        self._host.hub.unwatch(self, session_id)
        self._state.detach()
        self._delivery = None
        if self._presence_task is not None:
            self._presence_task.cancel()
            self._presence_task = None
            if presence_leave:
                self._host.background(
                    self._report_presence(session_pb2.PRESENCE_ACTION_LEAVE, session_id)
                )

    def _delivery_failed(self, error: CoreError) -> None:
        self._error(error_code_for(error.code), error.message)
        if error.code == "session_not_found":
            self._detach_session(presence_leave=False)

    def send_presence(self, session_id: str, devices: list[dict[str, Any]]) -> None:
        if session_id == self._session_id:
            self._push(protocol.presence(session_id, devices))

    # -- writing ------------------------------------------------------------

    def _emit_change(self, change: session_pb2.Change) -> None:
        """A change live from the bus: its commit → sent time is fan-out latency."""
        committed = change.committed_at.seconds + change.committed_at.nanos / 1e9
        self._emit(change, committed)

    def _emit_backfilled_change(self, change: session_pb2.Change) -> None:
        """A change read from core (resume, backfill): maybe hours old, not fan-out."""
        self._emit(change, 0.0)

    def _emit(self, change: session_pb2.Change, committed: float) -> None:
        self._push(convert.change_message(change), committed_at=committed)
        if change.kind == session_pb2.CHANGE_KIND_ENDED:
            # The stream of an ended session is over; the device may open another.
            asyncio.get_running_loop().call_soon(self._detach_session_if, change.session_id)

    def _detach_session_if(self, session_id: str) -> None:
        if self._session_id == session_id:
            self._detach_session(presence_leave=False)

    def _emit_backfill_snapshot(self, session: session_pb2.Session, reason: str) -> None:
        self._metrics.backfills.labels(reason=reason).inc()
        self._push(protocol.snapshot(convert.session_view(session), recovered=False, reason=reason))

    def _error(
        self,
        code: ErrorCode,
        message: str,
        *,
        ref: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self._push_error(protocol.error(code, message, ref=ref, details=details), code)

    def _push_error(self, message: protocol.Message, code: ErrorCode) -> None:
        self._metrics.errors.labels(code=code.value).inc()
        self._push(message)

    def _push(self, message: protocol.Message, *, committed_at: float = 0.0) -> None:
        """Queues `message`; never raises (fan-out calls it for every device in turn)."""
        try:
            text = protocol.encode(message)
        except Exception as error:
            self._fail("encode", error)
            return
        self._outbound.push(Frame(text, message["type"], committed_at))

    def _sent(self, frame: Frame) -> None:
        self._metrics.messages.labels(type=frame.label, direction="out").inc()
        if frame.committed_at:
            self._metrics.fanout_latency.observe(max(0.0, time.time() - frame.committed_at))

    async def _conflict_details(self, error: CoreError) -> dict[str, Any]:
        details: dict[str, Any] = {}
        for name in ("version", "epoch"):
            value = error.trailers.get(f"syncbridge-{name}")
            if value is not None and value.isdigit():
                details[name] = int(value)
        if self._session_id is not None:
            with contextlib.suppress(CoreError):
                current = await self._host.core.get_session(self.caller, self._session_id)
                details["state"] = convert.session_view(current)["state"]
                details["version"] = current.version
                details["epoch"] = current.epoch
        return details

    # -- token lifetime -----------------------------------------------------

    async def _watch_expiry(self) -> None:
        while self.close_code is None:
            self._refreshed.clear()
            remaining = self._expires_at - time.time()
            if remaining > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._refreshed.wait(), remaining)
                continue
            grace = self._config.token_grace_seconds
            self._error(
                ErrorCode.TOKEN_EXPIRING,
                "token expired: send refresh",
                details={"grace_seconds": grace},
            )
            try:
                await asyncio.wait_for(self._refreshed.wait(), grace)
            except TimeoutError:
                await self.close(CloseCode.TOKEN_EXPIRED, "token expired")
                return
