"""Development mTLS material for the local stack: a fresh CA and the certificates it issues.

    bazel run //libs/tls:dev_pki -- DIRECTORY

writes into DIRECTORY: ca.crt, session-core.crt/.key (core's server
certificate), ws-edge.crt/.key and syncbridge-admin.crt/.key (client
certificates: the edge's, and the operators' one for grpcurl). tools/run-local
runs it at every start, so every run has a new CA. DEVELOPMENT ONLY.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from libs.tls.pki import CertificateAuthority

SERVER = "session-core"
CLIENTS = ("ws-edge", "syncbridge-admin")


def write(directory: Path) -> Path:
    """A new CA, core's server certificate and the clients' certificates, in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = CertificateAuthority("syncbridge-dev-ca")
    (directory / "ca.crt").write_bytes(ca.cert_pem)
    ca.issue(SERVER, server=True).write(directory, SERVER)
    for client in CLIENTS:
        ca.issue(client).write(directory, client)
    return directory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    print(write(args.directory))
    return 0


if __name__ == "__main__":
    sys.exit(main())
