"""Two devices of one user syncing through a running stack (tools/run-local).

    bazel run //libs/client:demo -- [--url ws://127.0.0.1:8080/session/connect] [--updates 5]

The phone creates a session and edits it; the laptop joins and sees every
change; then the laptop takes the session over (handoff) and edits it too.
Tokens are minted with the development key (`dev_token init`).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from libs.client import dev_token
from libs.client.client import SyncClient


def show(device: str, client: SyncClient) -> Any:
    def callback(message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "change":
            print(
                f"  {device:<6} sees v{message['version']} {message.get('patch', message['kind'])}"
            )
        elif kind == "handoff":
            print(f"  {device:<6} sees v{message['version']} handoff to {message['active_device']}")
        elif kind == "presence":
            online = [d["device_id"] for d in message["devices"] if d["online"]]
            print(f"  {device:<6} sees online: {', '.join(online)}")

    return callback


async def demo(url: str, user: str, updates: int) -> None:
    directory = dev_token.key_dir()
    token = dev_token.mint(directory, user, 600)
    phone = SyncClient(url, device_id="phone", token=token)
    laptop = SyncClient(url, device_id="laptop", token=token)
    phone.on_change(show("phone", phone))
    laptop.on_change(show("laptop", laptop))
    session = await phone.open(initial_state={"track": "intro", "position": 0})
    print(f"phone  opened session {session['session_id']} at v{session['version']}")
    await laptop.open(session["session_id"])
    print(f"laptop joined at v{laptop.version}: {laptop.state}")
    for n in range(1, updates + 1):
        ack = await phone.update({"position": n * 10})
        print(f"phone  update position={n * 10} acked as v{ack.version}")
    await laptop.wait_for_version(phone.version)
    moved = await laptop.handoff("laptop")
    await phone.wait_for_version(moved.version)
    ack = await laptop.update({"track": "chorus"}, require_lease=True)
    await phone.wait_for_version(ack.version)
    print(f"phone  state v{phone.version}: {phone.state} (active: {phone.active_device})")
    print(f"laptop state v{laptop.version}: {laptop.state} (active: {laptop.active_device})")
    await phone.close()
    await laptop.close()
    if phone.state != laptop.state or phone.version != laptop.version:
        raise SystemExit("devices disagree")
    print("in sync")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="ws://127.0.0.1:8080/session/connect")
    parser.add_argument("--user", default="demo")
    parser.add_argument("--updates", type=int, default=5)
    args = parser.parse_args(argv)
    if not (dev_token.key_dir() / "private.pem").exists():
        print("no dev key: run `bazel run //libs/client:dev_token -- init`", file=sys.stderr)
        return 2
    asyncio.run(demo(args.url, args.user, args.updates))
    return 0


if __name__ == "__main__":
    sys.exit(main())
