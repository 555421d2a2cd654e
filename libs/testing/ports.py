"""A loopback port the kernel just handed out, for a server a test starts.

One helper for every test and harness: ports come from the kernel, never a
fixed number (//:isolation_scan_test), so suites run beside tools/run-local
and beside each other.
"""

from __future__ import annotations

import socket

HOST = "127.0.0.1"


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago (closed before return)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])
