"""The local stack's certificates: every one chains to the CA written beside it."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from libs.tls import dev_pki


def test_writes_a_ca_core_and_both_clients(tmp_path: Path) -> None:
    assert dev_pki.main([str(tmp_path / "tls")]) == 0
    directory = tmp_path / "tls"
    ca = x509.load_pem_x509_certificate((directory / "ca.crt").read_bytes())
    for name in (dev_pki.SERVER, *dev_pki.CLIENTS):
        cert = x509.load_pem_x509_certificate((directory / f"{name}.crt").read_bytes())
        cert.verify_directly_issued_by(ca)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == [name]
        assert (directory / f"{name}.key").stat().st_mode & 0o077 == 0
