"""Development JWTs for the local stack: a key pair, and tokens signed with it.

    bazel run //libs/client:dev_token -- init              # key pair (once)
    bazel run //libs/client:dev_token -- mint alice 3600   # a token for user alice

`init` writes private.pem and public.pem under the key directory (default
~/.config/syncbridge/dev-jwt, or SYNCBRIDGE_DEV_JWT_DIR); ws-edge's default
SYNCBRIDGE_EDGE_JWT_PUBLIC_KEY_PATH points at that public.pem, and the
issuer/audience below are its defaults. DEVELOPMENT ONLY: production tokens
come from the identity provider, and its public key or JWKS is configured.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

DEFAULT_DIR = Path.home() / ".config" / "syncbridge" / "dev-jwt"  # ws-edge's default too
ISSUER = "https://auth.syncbridge.dev"
AUDIENCE = "syncbridge"


def key_dir() -> Path:
    return Path(os.environ.get("SYNCBRIDGE_DEV_JWT_DIR", str(DEFAULT_DIR)))


def init(directory: Path) -> Path:
    """Creates an ES256 key pair in `directory` unless one is there; returns public.pem."""
    private_path, public_path = directory / "private.pem", directory / "public.pem"
    if private_path.exists() and public_path.exists():
        return public_path
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    private_path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    private_path.chmod(0o600)
    public_path.write_bytes(
        key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    return public_path


def mint(directory: Path, user: str, lifetime: float = 3600.0) -> str:
    """A token for `user`, valid for `lifetime` seconds, signed with the dev key."""
    key = load_pem_private_key((directory / "private.pem").read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise SystemExit(f"{directory / 'private.pem'}: not an EC key (ES256 needs P-256)")
    now = int(time.time())
    claims = {
        "sub": user,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": int(now + lifetime),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, key, algorithm="ES256")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("init", help="create the key pair if missing; print public.pem's path")
    minting = commands.add_parser("mint", help="print a token")
    minting.add_argument("user")
    minting.add_argument("lifetime", nargs="?", type=float, default=3600.0)
    args = parser.parse_args(argv)
    directory = key_dir()
    if args.command == "init":
        print(init(directory))
        return 0
    if not (directory / "private.pem").exists():
        print(f"no dev key in {directory}: run the init command first", file=sys.stderr)
        return 2
    print(mint(directory, args.user, args.lifetime))
    return 0


if __name__ == "__main__":
    sys.exit(main())
