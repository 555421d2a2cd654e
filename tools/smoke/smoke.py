"""Smoke test of a running SyncBridge: what CI and the deployment runbook call.

    bazel run //tools/smoke -- --url wss://ws.staging.harmonyflow.io/session/connect \\
        --api https://api.staging.harmonyflow.io --token-file /run/secrets/smoke-token

Steps, in order; the first that fails ends the run with exit 1 and its name:
  health-live   GET /health/live  -> 200 {"status": "alive", "uptime": "<n>s"}
  health-ready  GET /health/ready -> 200 {"status": "healthy", "timestamp": "<ISO 8601>"}
  sync          two devices of the test user open one session and see each other's updates
  resume        one device's connection is cut; it resumes and replays what it missed
                (no snapshot fallback: never a silent gap)
  handoff       the lease moves to the other device; both see it; the new holder writes
  cleanup       DELETE /v1/sessions/<id> through the HTTP API (ends the smoke session)
The token (a JWT of a dedicated test user) comes by reference: --token-file,
or the SYNCBRIDGE_SMOKE_TOKEN variable. It is never printed. A private CA
(Let's Encrypt staging) is trusted through SSL_CERT_FILE.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from libs.backoff.backoff import Backoff
from libs.client.client import SyncClient

TOKEN_ENV = "SYNCBRIDGE_SMOKE_TOKEN"  # noqa: S105 - the variable's name, not a token
PHONE, LAPTOP = "smoke-phone", "smoke-laptop"
_UPTIME = re.compile(r"^\d+s$")
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


class StepFailed(Exception):
    """A check did not hold; the message says what was seen."""


@dataclass
class Smoke:
    url: str
    api: str
    token: str
    timeout: float
    session_id: str | None = None
    clients: list[SyncClient] = field(default_factory=list)

    # -- HTTP -------------------------------------------------------------

    def http(self, method: str, path: str, auth: bool = False) -> tuple[int, Any]:
        request = urllib.request.Request(f"{self.api.rstrip('/')}{path}", method=method)  # noqa: S310
        if auth:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(  # noqa: S310 - the operator's own API URL
                request, timeout=self.timeout
            ) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        except (urllib.error.URLError, OSError) as err:
            raise StepFailed(f"{method} {path}: {getattr(err, 'reason', err)}") from None
        try:
            return status, json.loads(raw) if raw else None
        except json.JSONDecodeError:
            return status, raw.decode(errors="replace")[:200]

    async def health_live(self) -> None:
        status, body = await asyncio.to_thread(self.http, "GET", "/health/live")
        if status != 200 or not isinstance(body, dict) or body.get("status") != "alive":
            raise StepFailed(f"/health/live answered {status} {body!r}, want 200 status=alive")
        if not _UPTIME.match(str(body.get("uptime", ""))):
            raise StepFailed(f"/health/live uptime {body.get('uptime')!r} is not '<n>s'")

    async def health_ready(self) -> None:
        status, body = await asyncio.to_thread(self.http, "GET", "/health/ready")
        if status != 200 or not isinstance(body, dict) or body.get("status") != "healthy":
            raise StepFailed(f"/health/ready answered {status} {body!r}, want 200 status=healthy")
        if not _TIMESTAMP.match(str(body.get("timestamp", ""))):
            raise StepFailed(f"/health/ready timestamp {body.get('timestamp')!r} is not ISO 8601")

    # -- WebSocket ----------------------------------------------------------

    def client(self, device: str) -> SyncClient:
        made = SyncClient(
            self.url,
            device_id=device,
            token=self.token,
            backoff=Backoff(base=0.2, cap=2.0),
            request_timeout=self.timeout,
            open_timeout=self.timeout,
        )
        self.clients.append(made)
        return made

    async def sync(self) -> None:
        phone, laptop = self.client(PHONE), self.client(LAPTOP)
        session = await phone.open(initial_state={"smoke": True, "step": "sync"})
        self.session_id = session["session_id"]
        await laptop.open(self.session_id)
        ack = await phone.update({"position": 1})
        await self._converge(laptop, ack.version, "laptop did not see the phone's update")
        ack = await laptop.update({"note": "from laptop"})
        await self._converge(phone, ack.version, "phone did not see the laptop's update")
        self._same("after sync")

    async def resume(self) -> None:
        phone, laptop = self.clients
        before = laptop.stats.connects
        await laptop.drop()  # no closing handshake: like a lost network
        for n in (2, 3):
            ack = await phone.update({"position": n})
        for _ in range(int(self.timeout / 0.05)):  # the client reconnects on its own
            if laptop.stats.connects > before:
                break
            await asyncio.sleep(0.05)
        else:
            raise StepFailed("laptop did not reconnect after its connection was cut")
        await self._converge(laptop, ack.version, "laptop did not catch up after resuming")
        if laptop.stats.snapshots_unrecovered:
            raise StepFailed("resume fell back to a snapshot (recovered:false) instead of replay")
        self._same("after resume")

    async def handoff(self) -> None:
        phone, laptop = self.clients
        moved = await phone.handoff(LAPTOP)
        for c in (phone, laptop):
            await self._converge(c, moved.version, f"{c.device_id} did not see the handoff")
            if c.active_device != LAPTOP:
                raise StepFailed(f"{c.device_id} says {c.active_device!r} is active, not {LAPTOP}")
        ack = await laptop.update({"step": "handoff"}, require_lease=True)
        await self._converge(phone, ack.version, "phone did not see the new lease holder's update")
        self._same("after handoff")

    async def cleanup(self) -> None:
        for c in self.clients:
            await c.close()
        self.clients.clear()
        if self.session_id is None:
            return
        status, body = await asyncio.to_thread(
            self.http, "DELETE", f"/v1/sessions/{self.session_id}", True
        )
        if status not in (200, 204):
            raise StepFailed(f"DELETE /v1/sessions/{self.session_id} answered {status} {body!r}")

    async def _converge(self, c: SyncClient, version: int, what: str) -> None:
        try:
            await c.wait_for_version(version, within=self.timeout)
        except TimeoutError:
            raise StepFailed(f"{what} (at v{c.version}, want v{version})") from None

    def _same(self, when: str) -> None:
        phone, laptop = self.clients
        a, b = json.dumps(phone.state, sort_keys=True), json.dumps(laptop.state, sort_keys=True)
        if a != b or phone.version != laptop.version:
            raise StepFailed(
                f"devices disagree {when}: v{phone.version} {a} vs v{laptop.version} {b}"
            )

    async def close_quietly(self) -> None:
        for c in self.clients:
            await c.close(leave=False)


async def run_steps(smoke: Smoke, out: Any) -> str | None:
    """Runs every step; returns the name of the one that failed, or None."""
    steps: list[tuple[str, Callable[[], Awaitable[None]]]] = [
        ("health-live", smoke.health_live),
        ("health-ready", smoke.health_ready),
        ("sync", smoke.sync),
        ("resume", smoke.resume),
        ("handoff", smoke.handoff),
        ("cleanup", smoke.cleanup),
    ]
    try:
        for name, step in steps:
            started = time.monotonic()
            try:
                await asyncio.wait_for(step(), smoke.timeout * 4)
            except StepFailed as err:
                print(f"smoke: FAILED at step {name}: {err}", file=out)
                return name
            except Exception as err:  # a client error, a timeout: still this step's failure
                print(f"smoke: FAILED at step {name}: {type(err).__name__}: {err}", file=out)
                return name
            print(f"smoke: ok   {name} ({time.monotonic() - started:.2f}s)", file=out)
        return None
    finally:
        await smoke.close_quietly()


def read_token(path: str | None) -> str | None:
    if path:
        with open(path) as handle:
            return handle.read().strip()
    return os.environ.get(TOKEN_ENV) or None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="WebSocket URL, …/session/connect")
    parser.add_argument("--api", required=True, help="HTTP API base URL (health, /v1)")
    parser.add_argument("--token-file", help=f"file holding the test user's JWT (or ${TOKEN_ENV})")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per wait")
    args = parser.parse_args(argv)
    token = read_token(args.token_file)
    if not token:
        print(f"smoke: no token: pass --token-file or set {TOKEN_ENV}", file=sys.stderr)
        return 2
    smoke = Smoke(args.url, args.api, token, args.timeout)
    failed = asyncio.run(run_steps(smoke, sys.stdout))
    if failed:
        return 1
    print("smoke: passed", file=sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
