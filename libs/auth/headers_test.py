"""Tokens are taken from the Authorization header or the subprotocol list, strictly."""

import pytest

from libs.auth.errors import AuthError, AuthErrorCode
from libs.auth.headers import bearer_from_header, token_from_subprotocols


def _code(call: object) -> AuthErrorCode:
    assert callable(call)
    with pytest.raises(AuthError) as caught:
        call()
    return caught.value.code


@pytest.mark.parametrize(
    "value", ["Bearer abc.def.ghi", "bearer abc.def.ghi", "  BEARER  abc.def.ghi "]
)
def test_bearer_header(value: str) -> None:
    assert bearer_from_header(value) == "abc.def.ghi"


@pytest.mark.parametrize("value", [None, "", "   "])
def test_bearer_header_missing(value: str | None) -> None:
    assert _code(lambda: bearer_from_header(value)) == AuthErrorCode.MISSING


@pytest.mark.parametrize("value", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer a b", "abc.def.ghi"])
def test_bearer_header_malformed(value: str) -> None:
    assert _code(lambda: bearer_from_header(value)) == AuthErrorCode.MALFORMED


@pytest.mark.parametrize(
    "header",
    [
        "syncbridge.v1, bearer.abc.def.ghi",
        "bearer.abc.def.ghi,syncbridge.v1",
        " syncbridge.v1 ,  bearer.abc.def.ghi ",
    ],
)
def test_subprotocols(header: str) -> None:
    assert token_from_subprotocols(header) == ("abc.def.ghi", "syncbridge.v1")


@pytest.mark.parametrize("header", [None, "", "syncbridge.v1"])
def test_subprotocols_without_token(header: str | None) -> None:
    assert _code(lambda: token_from_subprotocols(header)) == AuthErrorCode.MISSING


@pytest.mark.parametrize(
    "header",
    [
        "syncbridge.v1, bearer.",
        "syncbridge.v1, bearer.a.b.c, bearer.d.e.f",
        "bearer.abc.def.ghi",
        "syncbridge.v2, bearer.abc.def.ghi",
    ],
)
def test_subprotocols_malformed(header: str) -> None:
    assert _code(lambda: token_from_subprotocols(header)) == AuthErrorCode.MALFORMED
