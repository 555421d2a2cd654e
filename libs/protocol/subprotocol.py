"""The WebSocket subprotocols of the client protocol: declared once, for edge, auth and client.

A client offers `APP_SUBPROTOCOL` (the protocol version it speaks) and, when it
cannot set an Authorization header (browsers), `BEARER_SUBPROTOCOL_PREFIX` +
its token; the edge selects `APP_SUBPROTOCOL`, never the token.
"""

from __future__ import annotations

APP_SUBPROTOCOL = "syncbridge.v1"
BEARER_SUBPROTOCOL_PREFIX = "bearer."
