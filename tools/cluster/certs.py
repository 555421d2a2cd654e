"""The cluster's certificates, made with openssl: one CA signs everything.

EC P-256 keys: a few milliseconds each, where RSA would cost seconds on two
shared cores. Nothing here leaves the state directory.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

OPENSSL = "/usr/bin/openssl"
DAYS = "3"  # a test cluster's lifetime, with room


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    ca: Pair
    apiserver: Pair
    admin: Pair
    git: Pair
    service_account: Pair  # cert = the public key (PEM), key = the signing key


def _openssl(*args: str) -> None:
    done = subprocess.run([OPENSSL, *args], capture_output=True, text=True, check=False, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {args[0]}: {done.stderr.strip()}")


def _key(path: Path) -> None:
    _openssl(
        "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path)
    )
    path.chmod(0o600)


def _signed(directory: Path, name: str, ca: Pair, subject: str, ext: str) -> Pair:
    pair = Pair(directory / f"{name}.crt", directory / f"{name}.key")
    _key(pair.key)
    csr = directory / f"{name}.csr"
    _openssl("req", "-new", "-key", str(pair.key), "-subj", subject, "-out", str(csr))
    extfile = directory / f"{name}.ext"
    extfile.write_text(ext)
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca.cert), "-CAkey", str(ca.key),
        "-CAcreateserial", "-days", DAYS, "-extfile", str(extfile), "-out", str(pair.cert),
    )  # fmt: skip
    csr.unlink()
    extfile.unlink()
    return pair


def server_ext(dns: list[str], ips: list[str]) -> str:
    """x509v3 extensions of a TLS server certificate for these names."""
    names = [f"DNS:{name}" for name in dns] + [f"IP:{ip}" for ip in ips]
    return (
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
        f"extendedKeyUsage=serverAuth\nsubjectAltName={','.join(names)}\n"
    )


CLIENT_EXT = (
    "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
    "extendedKeyUsage=clientAuth\n"
)


def make(directory: Path, host: str, service_ip: str, git_host: str) -> Pki:
    """Writes a fresh CA and every certificate the cluster uses into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = Pair(directory / "ca.crt", directory / "ca.key")
    _key(ca.key)
    _openssl(
        "req", "-x509", "-new", "-key", str(ca.key), "-subj", "/CN=syncbridge-local-cluster-ca",
        "-days", DAYS, "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", str(ca.cert),
    )  # fmt: skip
    in_cluster = ["kubernetes", "kubernetes.default", "kubernetes.default.svc", "localhost"]
    apiserver = _signed(
        directory, "apiserver", ca, "/CN=kube-apiserver", server_ext(in_cluster, [host, service_ip])
    )
    admin = _signed(directory, "admin", ca, "/O=system:masters/CN=cluster-admin", CLIENT_EXT)
    git = _signed(directory, "git", ca, f"/CN={git_host}", server_ext([git_host], []))
    sa = Pair(directory / "sa.pub", directory / "sa.key")
    _key(sa.key)
    _openssl("pkey", "-in", str(sa.key), "-pubout", "-out", str(sa.cert))
    return Pki(ca=ca, apiserver=apiserver, admin=admin, git=git, service_account=sa)


def load(directory: Path) -> Pki:
    """The Pki `make` wrote into `directory` (paths only)."""

    def pair(name: str) -> Pair:
        return Pair(directory / f"{name}.crt", directory / f"{name}.key")

    return Pki(
        ca=pair("ca"),
        apiserver=pair("apiserver"),
        admin=pair("admin"),
        git=pair("git"),
        service_account=Pair(directory / "sa.pub", directory / "sa.key"),
    )
