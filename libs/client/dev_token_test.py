"""The dev key pair and tokens are what ws-edge's verifier accepts with its defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from libs.auth.config import JwtConfig
from libs.auth.verifier import JwtVerifier
from libs.client import dev_token


def test_init_is_idempotent_and_minted_tokens_verify(tmp_path: Path) -> None:
    public = dev_token.init(tmp_path)
    first = public.read_bytes()
    assert dev_token.init(tmp_path).read_bytes() == first
    assert (tmp_path / "private.pem").stat().st_mode & 0o077 == 0
    verifier = JwtVerifier(
        JwtConfig(audience=dev_token.AUDIENCE, issuer=dev_token.ISSUER, public_key_path=str(public))
    )
    claims = verifier.verify(dev_token.mint(tmp_path, "alice", 60))
    assert claims.sub == "alice" and claims.exp - claims.iat == 60


def test_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCBRIDGE_DEV_JWT_DIR", str(tmp_path))
    assert dev_token.main(["mint", "bob"]) == 2
    assert dev_token.main(["init"]) == 0
    assert dev_token.main(["mint", "bob", "30"]) == 0
