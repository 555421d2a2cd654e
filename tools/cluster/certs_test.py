from __future__ import annotations

import subprocess
from pathlib import Path

from tools.cluster import certs


def openssl(*args: str) -> str:
    return subprocess.run([certs.OPENSSL, *args], capture_output=True, text=True, check=True).stdout


def test_one_ca_signs_server_and_client_certificates(tmp_path: Path) -> None:
    pki = certs.make(tmp_path, "127.0.0.1", "10.96.0.1", "git.example.test")
    for pair in (pki.apiserver, pki.admin, pki.git):
        assert ": OK" in openssl("verify", "-CAfile", str(pki.ca.cert), str(pair.cert))
    text = openssl("x509", "-in", str(pki.apiserver.cert), "-noout", "-text")
    assert "IP Address:127.0.0.1" in text and "DNS:kubernetes.default.svc" in text
    assert "DNS:git.example.test" in openssl("x509", "-in", str(pki.git.cert), "-noout", "-text")
    subject = openssl("x509", "-in", str(pki.admin.cert), "-noout", "-subject")
    assert "O = system:masters" in subject
    assert (pki.ca.key.stat().st_mode & 0o077) == 0
    assert certs.load(tmp_path) == pki


def test_a_certificate_from_another_ca_does_not_verify(tmp_path: Path) -> None:
    one = certs.make(tmp_path / "one", "127.0.0.1", "10.96.0.1", "git.example.test")
    two = certs.make(tmp_path / "two", "127.0.0.1", "10.96.0.1", "git.example.test")
    done = subprocess.run(
        [certs.OPENSSL, "verify", "-CAfile", str(one.ca.cert), str(two.git.cert)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
