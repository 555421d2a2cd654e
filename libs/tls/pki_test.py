"""Issued certificates chain to their CA and carry the identity as SAN and CN."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from libs.tls.identity import peer_identities
from libs.tls.pki import CertificateAuthority


def test_a_client_certificate_names_its_identity_and_chains_to_the_ca(tmp_path: Path) -> None:
    ca = CertificateAuthority()
    issued = ca.issue("ws-edge")
    cert = x509.load_pem_x509_certificate(issued.cert_pem)
    root = x509.load_pem_x509_certificate(ca.cert_pem)
    cert.verify_directly_issued_by(root)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["ws-edge"]
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "ws-edge"
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    crt, key = issued.write(tmp_path, "ws-edge")
    assert crt.read_bytes() == issued.cert_pem
    assert key.stat().st_mode & 0o077 == 0  # the key is the owner's only


def test_another_ca_does_not_vouch_for_it() -> None:
    issued = CertificateAuthority().issue("ws-edge", server=True)
    stranger = x509.load_pem_x509_certificate(CertificateAuthority().cert_pem)
    with pytest.raises(InvalidSignature):
        x509.load_pem_x509_certificate(issued.cert_pem).verify_directly_issued_by(stranger)


def test_peer_identities_prefer_sans_over_the_cn() -> None:
    assert peer_identities({}) == frozenset()
    assert peer_identities({"x509_common_name": [b"old"]}) == {"old"}
    context = {"x509_common_name": [b"cn"], "x509_subject_alternative_name": [b"a", b"b"]}
    assert peer_identities(context) == {"a", "b"}
