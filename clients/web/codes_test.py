"""codes.mts agrees with the protocol's close-code table, libs/protocol and the Python client."""

from __future__ import annotations

import re
from pathlib import Path

from libs.client import client as python_client
from libs.protocol import codes, subprotocol

CODES = (Path(__file__).parent / "codes.mts").read_text()
README = Path("services/ws_edge/README.md").read_text()
# Closes the client makes itself, or the browser reports: not in the server's table.
CLIENT_SIDE = {"CLOSE_GAP", "CLOSE_DROPPED", "CLOSE_ABNORMAL"}


def constants() -> dict[str, int]:
    return {name: int(n) for name, n in re.findall(r"export const (CLOSE_\w+) = (\d+);", CODES)}


def documented() -> dict[int, str]:
    """`| `4001` | token_expired | ... |` rows of the README's close-code table."""
    return {int(n): name for n, name in re.findall(r"^\| `(\d{4})` \| (\w+) \|", README, re.M)}


def names_in(set_name: str) -> set[str]:
    match = re.search(rf"export const {set_name}[^=]*= new Set\(\[(.*?)\]\)", CODES, re.S)
    assert match, set_name
    return set(re.findall(r"CLOSE_\w+|\"\w+\"", match.group(1)))


def test_every_server_close_code_is_the_documented_one() -> None:
    table = documented()
    assert len(table) >= 12
    for name, number in constants().items():
        if name in CLIENT_SIDE:
            assert number not in table or name == "CLOSE_ABNORMAL", name
            continue
        assert table.get(number) == name.removeprefix("CLOSE_").lower(), (name, number)


def test_fatal_and_transient_sets_match_the_python_client() -> None:
    values = constants()
    fatal = {values[name] for name in names_in("FATAL_CLOSE_CODES")}
    assert fatal == set(codes.FATAL_CLOSE_CODES)
    transient = {name.strip('"') for name in names_in("TRANSIENT_ERRORS")}
    assert transient == set(python_client.TRANSIENT_ERRORS)
    assert '"draining"' in CODES.split("TRANSIENT_REFUSALS", 1)[1]
    assert python_client.TRANSIENT_ERRORS | {"draining"} == python_client.TRANSIENT_REFUSALS


def test_the_subprotocol_is_the_python_clients() -> None:
    assert f'APP_SUBPROTOCOL = "{subprotocol.APP_SUBPROTOCOL}"' in CODES
