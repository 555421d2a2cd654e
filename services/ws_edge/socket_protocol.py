"""The edge's Sanic protocol class: what happens on a socket before and under the WebSocket.

Three things Sanic does not do the way the edge needs:

- Subprotocols: websockets refuses a client that offers none to a server
  that has some (HTTP 400), but native clients authenticate with the
  Authorization header and need not offer any; browsers must offer
  `syncbridge.v1` next to their `bearer.<token>` entry and get it echoed.
- Header deadline: Sanic's request timeout restarts with every byte read,
  so a peer trickling one byte at a time holds a half-sent upgrade open
  forever. Here a request's head must be complete within
  `SYNCBRIDGE_EDGE_HEADER_TIMEOUT_SECONDS` of its first byte, however it
  arrives (then 408 and the socket is closed, as Sanic's own timeout does).
- Text that is not UTF-8: Sanic decodes text frames strictly in a task
  nobody awaits, so a bad frame vanishes (no answer, no close). Here text is
  decoded with `surrogateescape`; the bytes that were not UTF-8 arrive as
  lone surrogates, and the connection closes 1007 (protocol.NotText).
"""

from __future__ import annotations

import asyncio
import codecs
from typing import Any

from sanic import Request
from sanic.exceptions import RequestTimeout
from sanic.http import Stage
from sanic.server.protocols.websocket_protocol import WebSocketProtocol
from sanic.server.websockets.frame import WebsocketFrameAssembler

# app.config key of the header deadline (Sanic passes protocols the app, not kwargs).
HEADER_TIMEOUT_KEY = "EDGE_HEADER_DEADLINE"

_LenientUtf8 = codecs.getincrementaldecoder("utf-8")


class TextAssembler(WebsocketFrameAssembler):
    """Sanic's frame assembler, decoding text with `surrogateescape` instead of `strict`.

    The base class sets `self.decoder` to a strict UTF-8 decoder for each text
    message (None for binary); this property swaps in a lenient one, so the
    rest of the assembler (fragments, flow control) stays Sanic's.
    """

    __slots__ = ("_text_decoder",)

    @property
    def decoder(self) -> codecs.IncrementalDecoder | None:
        return self._text_decoder

    @decoder.setter
    def decoder(self, value: codecs.IncrementalDecoder | None) -> None:
        self._text_decoder = None if value is None else _LenientUtf8(errors="surrogateescape")


class EdgeWebSocketProtocol(WebSocketProtocol):
    """Sanic's WebSocket protocol with the edge's subprotocol, header and UTF-8 rules."""

    # Sanic's protocol classes have slots (and no __dict__): so has this one.
    __slots__ = ("_head_of", "_head_timer")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[no-untyped-call]
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_of = -1  # the requests_count the running timer is for

    def data_received(self, data: bytes) -> None:
        if self.websocket is None:
            self._time_head()
        super().data_received(data)  # type: ignore[no-untyped-call]

    def _time_head(self) -> None:
        """Starts the header deadline when the bytes of a new request head begin."""
        http = getattr(self, "_http", None)  # None until Sanic's connection task set it up
        if http is None or http.stage not in (Stage.IDLE, Stage.REQUEST):
            return  # a body or a response: not a head
        count = self.state["requests_count"]
        if self._head_timer is not None and self._head_of == count:
            return  # this head is already being timed: more bytes do not extend it
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_of = count
        timeout = float(self.app.config.get(HEADER_TIMEOUT_KEY, self.request_timeout))
        self._head_timer = self.loop.call_later(timeout, self._head_overdue, count)

    def _head_overdue(self, count: int) -> None:
        self._head_timer = None
        http, task = getattr(self, "_http", None), self._task
        if self.websocket is not None or http is None or task is None:
            return
        if self.state["requests_count"] != count or http.stage not in (Stage.IDLE, Stage.REQUEST):
            return  # the head was complete in time
        # What Sanic's own check_timeouts does on a request timeout: 408, then close.
        http.exception = RequestTimeout("Request Timeout")
        task.cancel()

    def close(self, timeout: float | None = None) -> None:
        timer = getattr(self, "_head_timer", None)
        if timer is not None:
            timer.cancel()
            self._head_timer = None
        super().close(timeout)

    async def websocket_handshake(self, request: Request, subprotocols: Any = None) -> Any:
        offered = request.headers.get("sec-websocket-protocol")
        ws = await super().websocket_handshake(request, subprotocols if offered else None)
        # No frame was read yet: the handshake above does not yield after creating `ws`.
        ws.assembler = TextAssembler(ws)
        return ws
