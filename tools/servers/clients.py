"""Minimal standard-library clients: probes, shutdown and the test fixtures' setup.

RESP for Redis, psql for PostgreSQL, HTTP for RabbitMQ's management API, and
the readiness probes start() waits on (each speaks the server's own protocol).
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import struct
import subprocess
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import BinaryIO, TypeAlias

from tools.servers.config import (
    HOST,
    PG_BIN,
    POSTGRES_USER,
    RABBITMQ_PASSWORD,
    RABBITMQ_USER,
    ServerError,
    default_config,
)

# --- Minimal clients (probes, shutdown, test fixtures) -----------------------------------


class RedisReplyError(ServerError):
    """Redis answered a command with an error reply."""


RespValue: TypeAlias = "int | bytes | list[RespValue] | None"


def redis_command(*args: str | int, port: int | None = None, db: int = 0) -> RespValue:
    """Sends one command to the local Redis (after SELECT db) and returns its reply."""
    commands = [("SELECT", db), args] if db else [args]
    with (
        socket.create_connection((HOST, port or default_config().redis_port), timeout=5) as sock,
        sock.makefile("rb") as reader,
    ):
        sock.sendall(b"".join(_resp_encode(command) for command in commands))
        replies = [_resp_read(reader) for _ in commands]
    return replies[-1]


def _resp_encode(args: Sequence[str | int]) -> bytes:
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _resp_read(reader: BinaryIO) -> RespValue:
    line = reader.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("Redis closed the connection mid-reply")
    kind, body = line[:1], line[1:-2]
    if kind == b"+":
        return body
    if kind == b"-":
        raise RedisReplyError(body.decode(errors="replace"))
    if kind == b":":
        return int(body)
    if kind == b"$":
        length = int(body)
        if length < 0:
            return None
        return reader.read(length + 2)[:-2]
    if kind == b"*":
        count = int(body)
        return None if count < 0 else [_resp_read(reader) for _ in range(count)]
    raise ConnectionError(f"unexpected Redis reply {line!r}")


def psql(sql: str, *, database: str = "postgres", port: int | None = None) -> str:
    """Runs SQL through psql over loopback TCP as the superuser; returns unaligned rows."""
    result = subprocess.run(
        [
            str(PG_BIN / "psql"),
            "-X",  # ignore any ~/.psqlrc
            "-q",
            "-t",
            "-A",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            HOST,
            "-p",
            str(port or default_config().postgres_port),
            "-U",
            POSTGRES_USER,
            "-d",
            database,
            "-c",
            sql,
        ],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PGCONNECT_TIMEOUT": "10"},
        check=False,
    )
    if result.returncode != 0:
        raise ServerError(f"psql failed ({sql!r}): {result.stderr.strip()}")
    return result.stdout.strip()


def management_request(
    method: str, path: str, body: object = None, *, port: int | None = None
) -> tuple[int, bytes]:
    """Calls the RabbitMQ management HTTP API as guest; returns (status, body)."""
    request = urllib.request.Request(
        f"http://{HOST}:{port or default_config().rabbitmq_management_port}/api/{path.lstrip('/')}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={
            "Authorization": "Basic "
            + base64.b64encode(f"{RABBITMQ_USER}:{RABBITMQ_PASSWORD}".encode()).decode(),
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _redis_ready(port: int) -> bool:
    try:
        return redis_command("PING", port=port) == b"PONG"
    except (OSError, ServerError):  # refused, or -LOADING while starting
        return False


def _postgres_ready(port: int) -> bool:
    """True once the server authenticates a startup packet (not merely accepts TCP)."""
    params = f"user\0{POSTGRES_USER}\0database\0postgres\0\0".encode()
    startup = struct.pack("!ii", 8 + len(params), 196608) + params  # protocol 3.0
    try:
        with socket.create_connection((HOST, port), timeout=2) as sock:
            sock.sendall(startup)
            reply = sock.recv(1)
            with contextlib.suppress(OSError):
                sock.sendall(b"X\0\0\0\4")  # Terminate
    except OSError:
        return False
    return reply == b"R"  # authentication request/ok; 'E' means starting or shutting down


def _amqp_ready(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=2) as sock:
            sock.sendall(b"AMQP\0\0\x09\x01")
            return sock.recv(1) == b"\x01"  # a method frame: connection.start
    except OSError:
        return False


def _management_ready(port: int) -> bool:
    try:
        return management_request("GET", "whoami", port=port)[0] == 200
    except OSError:
        return False


def _port_in_use(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1):
            return True
    except OSError:
        return False
