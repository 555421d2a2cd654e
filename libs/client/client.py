"""An asyncio client for SyncBridge's WebSocket protocol (services/ws_edge/README.md).

    async with SyncClient(url, device_id="phone", token=get_token) as client:
        await client.open()                      # or open(session_id) to join one
        client.on_change(lambda message: print(client.version, client.state))
        await client.update({"page": 2})         # returns once core committed it
        await client.handoff("laptop")

The client keeps one connection up: after any disconnect (a deploy's 1001, a
network drop, a slow-consumer close) it reconnects with jittered exponential
backoff, resumes at its (session, epoch, version) on whichever replica
answers, and re-sends every update not yet acknowledged with its original
op_id, so nothing is applied twice and nothing is lost. `state` and
`version` only ever move through the server's ordered change stream
(mirror.py, pure). This module is the transport and its orchestration; the
rules live beside it, pure: the outbox of unacknowledged ops (outbox.py), the
token and its refresh timer (tokens.py), the ordered session copy (mirror.py).
Over 400 lines: the public API (open, update, handoff, the session's read-only
view) and the one connection loop that drives those pure parts share the
connection's state; another split would only pass that state between objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Origin, Subprotocol

from libs.backoff.backoff import Backoff
from libs.client.mirror import StateMirror, Verdict
from libs.client.outbox import TRANSIENT_ERRORS, Ack, Acked, Outbox, Refused, Retry
from libs.client.tokens import TokenKeeper, TokenSource
from libs.protocol.codes import FATAL_CLOSE_CODES, ClientCloseCode, CloseCode, ErrorCode
from libs.protocol.subprotocol import APP_SUBPROTOCOL, BEARER_SUBPROTOCOL_PREFIX
from libs.tasks.owned import OwnedTasks

log = logging.getLogger(__name__)

__all__ = [
    "TRANSIENT_ERRORS",
    "TRANSIENT_REFUSALS",
    "Ack",
    "ClientClosed",
    "ClientError",
    "Stats",
    "SyncClient",
    "TokenSource",
]

ChangeCallback = Callable[[dict[str, Any]], None]

# An open or resume refused with one of these is tried again on a new connection;
# any other refusal (session_not_found, unauthorized, forbidden, ...) ends the client.
TRANSIENT_REFUSALS = TRANSIENT_ERRORS | {ErrorCode.DRAINING}


class ClientError(Exception):
    """The server refused a request; `code` is the protocol's stable error code."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details or {}


class ClientClosed(Exception):
    """The client was closed (or the server told it to stay away) before the request ended."""


@dataclass
class Stats:
    """What happened to this client's connections: for tests, the demo and the load tool."""

    connects: int = 0
    connect_failures: int = 0
    close_codes: list[int] = field(default_factory=list)
    http_refusals: list[int] = field(default_factory=list)
    snapshots_unrecovered: int = 0
    resends: int = 0
    transient_refusals: list[str] = field(default_factory=list)


class SyncClient:
    """One device's connection to SyncBridge, kept up and resumed automatically."""

    def __init__(
        self,
        url: str | Sequence[str],
        *,
        device_id: str,
        token: TokenSource,
        origin: str | None = None,
        token_in_subprotocol: bool = False,
        backoff: Backoff | None = None,
        refresh_margin: float = 30.0,
        request_timeout: float = 30.0,
        open_timeout: float = 10.0,
        max_frame_bytes: int = 1 << 20,
    ) -> None:
        # Several URLs (replicas) are tried in turn after failures; normally a load
        # balancer sits behind one URL and picks the replica.
        self.urls = [url] if isinstance(url, str) else list(url)
        if not self.urls:
            raise ValueError("at least one URL is needed")
        self._url_index = 0
        self.device_id = device_id
        self._origin = origin
        self._token_in_subprotocol = token_in_subprotocol
        self._backoff = backoff or Backoff()
        self._request_timeout = request_timeout
        self._open_timeout = open_timeout
        self._max_frame_bytes = max_frame_bytes

        # session_id, epoch, version, state, active_device, devices, ended: read-only
        # views of the mirror, which only the server's ordered stream moves.
        self._mirror = StateMirror()
        self.stats = Stats()

        self._ws: ClientConnection | None = None
        # Every task the client starts is held here until it ends; failures are logged.
        self._tasks = OwnedTasks(log, f"client {device_id}")
        self._tokens = TokenKeeper(
            token, send=self._send_refresh, tasks=self._tasks, margin=refresh_margin
        )
        self._runner: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stopping = False
        self._fatal: BaseException | None = None
        self._opened: asyncio.Future[dict[str, Any]] | None = None
        self._open_request: dict[str, Any] | None = None
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._outbox = Outbox()
        self._callbacks: list[ChangeCallback] = []
        self._refs = itertools.count(1)
        self._version_waiters: list[tuple[int, asyncio.Future[None]]] = []

    # -- public API ---------------------------------------------------------

    async def __aenter__(self) -> SyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def on_change(self, callback: ChangeCallback) -> None:
        """Calls `callback(message)` after each change, handoff, snapshot or presence message
        has been applied to `state` / `version` / `devices`."""
        self._callbacks.append(callback)

    async def open(
        self, session_id: str | None = None, initial_state: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Connects and opens (or creates) a session; returns the first snapshot's session."""
        if self._opened is not None:
            raise RuntimeError("open() was already called")
        request: dict[str, Any] = {"type": "open"}
        if session_id:
            request["session_id"] = session_id
        if initial_state is not None:
            request["initial_state"] = initial_state
        self._open_request = request
        self._opened = asyncio.get_running_loop().create_future()
        self._runner = self._tasks.spawn(self._run(), name="run")
        return await asyncio.wait_for(asyncio.shield(self._opened), self._request_timeout)

    async def update(
        self, patch: dict[str, Any], *, require_lease: bool = False, op_id: str | None = None
    ) -> Ack:
        """Sends a merge patch against the current version; returns once core committed it.
        Kept, and re-sent with the same op_id after any reconnect, until acknowledged."""
        future = self.update_nowait(patch, require_lease=require_lease, op_id=op_id)
        return await asyncio.wait_for(asyncio.shield(future), self._request_timeout)

    def update_nowait(
        self, patch: dict[str, Any], *, require_lease: bool = False, op_id: str | None = None
    ) -> asyncio.Future[Ack]:
        """Like `update`, without waiting: the future of the ack (load generators)."""
        return self._track(
            {
                "type": "update",
                "op_id": op_id or uuid.uuid4().hex,
                "patch": patch,
                "require_lease": require_lease,
            }
        )

    async def handoff(self, to_device: str, *, op_id: str | None = None) -> Ack:
        """Moves the active-device lease to `to_device`; every device gets a `handoff`."""
        message = {"type": "handoff", "op_id": op_id or uuid.uuid4().hex, "to_device": to_device}
        future = self._track(message)
        return await asyncio.wait_for(asyncio.shield(future), self._request_timeout)

    async def refresh(self, token: str | None = None) -> None:
        """Sends a new token (from the token source if none is given)."""
        await self._tokens.refresh(token)

    async def wait_for_version(self, version: int, within: float = 10.0) -> None:
        """Until `self.version >= version` (in the current epoch)."""
        if self.version >= version:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._version_waiters.append((version, future))
        await asyncio.wait_for(future, within)

    @property
    def session_id(self) -> str | None:
        return self._mirror.session_id

    @property
    def epoch(self) -> int:
        return self._mirror.epoch

    @property
    def version(self) -> int:
        return self._mirror.version

    @property
    def state(self) -> dict[str, Any]:
        return self._mirror.state

    @property
    def active_device(self) -> str:
        return self._mirror.active_device

    @property
    def devices(self) -> list[dict[str, Any]]:
        return self._mirror.devices

    @property
    def ended(self) -> bool:
        return self._mirror.ended

    @property
    def url(self) -> str:
        """The URL the client (re)connects to next."""
        return self.urls[self._url_index % len(self.urls)]

    @property
    def connected(self) -> bool:
        return self._ready.is_set()

    @property
    def unacknowledged(self) -> int:
        return len(self._outbox)

    async def close(self, *, leave: bool = True) -> None:
        """Leaves (presence goes offline at once) and stops reconnecting."""
        if self._stopping:
            return
        self._stopping = True
        ws = self._ws
        if leave and ws is not None and self._ready.is_set():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._request({"type": "leave"}), 2.0)
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()
        await self._stop_tasks()
        self._fail_all(ClientClosed("client closed"))

    async def drop(self) -> None:
        """Tests: kill the connection without a closing handshake (the client reconnects)."""
        ws = self._ws
        if ws is not None and ws.transport is not None:
            ws.transport.abort()

    # -- connection loop ----------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            code = await self._connect_once()
            if self._stopping:
                return
            if code in FATAL_CLOSE_CODES:
                self._fatal = ClientClosed(f"server closed the connection with {code}")
                self._fail_all(self._fatal)
                return
            if code in (CloseCode.TOKEN_EXPIRED, HTTPStatus.UNAUTHORIZED):
                self._tokens.forget()  # expired: ask the source for a new one
            self._url_index += 1  # with several replicas' URLs, spread reconnects over them
            await asyncio.sleep(self._backoff.next_delay())

    async def _connect_once(self) -> int:
        """One connection, from handshake to close; returns the close code (or HTTP status)."""
        try:
            token = await self._tokens.current()
            headers: dict[str, str] = {}
            subprotocols = [Subprotocol(APP_SUBPROTOCOL)]
            if self._token_in_subprotocol:
                subprotocols.append(Subprotocol(BEARER_SUBPROTOCOL_PREFIX + token))
            else:
                headers["Authorization"] = f"Bearer {token}"
            async with connect(
                self.url,
                additional_headers=headers,
                subprotocols=subprotocols,
                origin=None if self._origin is None else Origin(self._origin),
                open_timeout=self._open_timeout,
                max_size=self._max_frame_bytes,
                compression=None,
                proxy=None,
            ) as ws:
                self._ws = ws
                self.stats.connects += 1
                # Structured, not background: awaited (and its error handled) right here.
                reader = asyncio.create_task(self._read(ws))
                try:
                    await self._handshake()
                    self._backoff.reset()
                    await reader
                except (ConnectionError, ConnectionClosed, TimeoutError):
                    pass  # lost during the handshake: the close code says why
                finally:
                    reader.cancel()
                    with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                        await reader
            close = ws.protocol.close_rcvd
            code = close.code if close is not None else 1006
        except InvalidStatus as refused:
            code = int(refused.response.status_code)
            self.stats.http_refusals.append(code)
            return code
        except ClientError as refused:
            if refused.code in TRANSIENT_REFUSALS:
                # open or resume refused for now (core unavailable, rate limited, a
                # replica draining): nothing is lost, try again after the backoff.
                log.info("open/resume refused, retrying", extra={"code": refused.code})
                self.stats.transient_refusals.append(refused.code)
                return ClientCloseCode.TRY_AGAIN_LATER
            # open or resume refused for good (session_not_found, auth): retrying cannot help.
            self._fatal = refused
            self._fail_all(refused)
            return CloseCode.NORMAL
        except (OSError, InvalidHandshake, TimeoutError) as error:
            # No connection was made (refused, timed out): nothing was closed.
            log.info("connect failed", extra={"error": repr(error)})
            self.stats.connect_failures += 1
            return 1006
        finally:
            self._ws = None
            self._ready.clear()
        self.stats.close_codes.append(code)
        return code

    async def _handshake(self) -> None:
        welcome = await self._request({"type": "hello", "device_id": self.device_id})
        self._tokens.welcomed(float(welcome.get("token_expires_at", 0)))
        if self.session_id is None:
            assert self._open_request is not None
            answer = await self._request(dict(self._open_request))
        else:
            answer = await self._request(
                {
                    "type": "resume",
                    "session_id": self.session_id,
                    "epoch": self.epoch,
                    "version": self.version,
                }
            )
        if self._opened is not None and not self._opened.done():
            self._opened.set_result(answer.get("session", {}))
        self._ready.set()
        self._outbox.reconnected()
        await self._pump()

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for frame in ws:
                self._dispatch(json.loads(frame))
        finally:
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(ConnectionError("connection lost"))

    # -- requests -----------------------------------------------------------

    async def _request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Sends `message` with a fresh ref; the answer (ack, welcome, snapshot) or ClientError."""
        ws = self._ws
        if ws is None:
            raise ConnectionError("not connected")
        ref = f"r{next(self._refs)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[ref] = future
        await ws.send(json.dumps({**message, "ref": ref}))
        try:
            return await asyncio.wait_for(future, self._request_timeout)
        finally:
            self._waiting.pop(ref, None)

    async def _send_refresh(self, token: str) -> dict[str, Any]:
        return await self._request({"type": "refresh", "token": token})

    def _track(self, message: dict[str, Any]) -> asyncio.Future[Ack]:
        if self._fatal is not None or self._stopping:
            raise ClientClosed("client closed")
        future: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        self._outbox.add(message, future)
        self._tasks.spawn(self._pump(), name="pump")
        return future

    async def _pump(self) -> None:
        """Sends the outbox's next op (outbox.py: one at a time, in order) if connected."""
        ws = self._ws
        if ws is None or not self._ready.is_set():
            return
        send = self._outbox.next_to_send(epoch=self.epoch, version=self.version)
        if send is None:
            return
        if send.resend:
            self.stats.resends += 1
        with contextlib.suppress(ConnectionClosed):
            await ws.send(json.dumps(send.message))

    async def _resend_later(self, op_id: str, delay: float) -> None:
        await asyncio.sleep(delay)
        if self._outbox.release(op_id):
            await self._pump()

    # -- incoming -----------------------------------------------------------

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        ref = message.get("ref")
        if kind in ("change", "handoff"):
            self._apply_change(message)
        elif kind == "snapshot":
            self._apply_snapshot(message)
        elif kind == "presence":
            if self._mirror.apply_presence(message):
                self._notify(message)
        elif kind == "ack":
            self._acked(message)
        elif kind == "error":
            self._errored(message)
        if ref is not None and kind != "error":
            future = self._waiting.get(ref)
            if future is not None and not future.done():
                future.set_result(message)

    def _apply_snapshot(self, message: dict[str, Any]) -> None:
        if not message.get("recovered", True):
            self.stats.snapshots_unrecovered += 1
        self._mirror.apply_snapshot(message["session"])
        self._outbox.snapshot(self.version)
        self._notify(message)

    def _apply_change(self, message: dict[str, Any]) -> None:
        verdict = self._mirror.apply_change(message)
        if verdict is Verdict.GAP:
            # The server promises no silent gap; if one shows, start over from a resume.
            log.warning("gap in the change stream: reconnecting to resume")
            ws = self._ws
            if ws is not None:
                self._tasks.spawn(ws.close(ClientCloseCode.GAP, "gap"), name="close-gap")
        elif verdict is Verdict.APPLIED:
            self._notify(message)

    def _notify(self, message: dict[str, Any]) -> None:
        if self._outbox.wants_send(self.version):
            self._tasks.spawn(self._pump(), name="pump")
        for callback in list(self._callbacks):
            try:
                callback(message)
            except Exception:
                log.exception("on_change callback failed")
        still = []
        for version, future in self._version_waiters:
            if self.version >= version and not future.done():
                future.set_result(None)
            elif not future.done():
                still.append((version, future))
        self._version_waiters = still

    def _acked(self, message: dict[str, Any]) -> None:
        acked = self._outbox.acked(message, epoch=self.epoch)
        if acked is None:
            return
        self._tasks.spawn(self._pump(), name="pump")  # the next op may go
        self._advance_to_own(acked)
        if not acked.entry.future.done():
            acked.entry.future.set_result(acked.ack)

    def _advance_to_own(self, acked: Acked) -> None:
        """Our own acknowledged op, applied at once if it directly follows (mirror.py)."""
        ack = acked.ack
        applied = self._mirror.apply_own(
            acked.entry.message,
            epoch=ack.epoch,
            version=ack.version,
            outcome=ack.outcome,
            device_id=self.device_id,
        )
        if applied is not None:
            self._notify(applied)

    def _errored(self, message: dict[str, Any]) -> None:
        code = str(message.get("code", "internal"))
        error = ClientError(code, str(message.get("message", "")), message.get("details"))
        ref = message.get("ref")
        if ref is not None:
            future = self._waiting.get(ref)
            if future is not None and not future.done():
                future.set_exception(error)
        if code == ErrorCode.TOKEN_EXPIRING:
            self._tokens.refresh_soon()
        outcome = self._outbox.refused(code, error.details)
        if isinstance(outcome, Retry):
            self._tasks.spawn(self._resend_later(outcome.op_id, outcome.delay), name="resend")
        elif isinstance(outcome, Refused):
            self._tasks.spawn(self._pump(), name="pump")  # the next op may go
            if not outcome.entry.future.done():
                outcome.entry.future.set_exception(error)

    # -- shutdown -----------------------------------------------------------

    async def _stop_tasks(self) -> None:
        await self._tasks.aclose()

    def _fail_all(self, error: BaseException) -> None:
        self._outbox.fail_all(error)
        if self._opened is not None and not self._opened.done():
            self._opened.set_exception(error)
        for _, future in self._version_waiters:
            if not future.done():
                future.set_exception(error)
        self._version_waiters = []
