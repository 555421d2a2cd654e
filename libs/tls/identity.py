"""The identities a gRPC peer proved with its client certificate."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

# Keys of grpc's auth context (grpc/grpc_security_constants.h).
_SAN = "x509_subject_alternative_name"
_CN = "x509_common_name"


def peer_identities(auth_context: Mapping[str, Iterable[bytes]]) -> frozenset[str]:
    """The client certificate's SANs, or its CN when it has none; empty without one.

    Only a certificate that chained to the server's trusted CA gets this far:
    the TLS handshake refuses the rest.
    """
    sans = list(auth_context.get(_SAN) or ())
    names = sans or list(auth_context.get(_CN) or ())
    return frozenset(name.decode("utf-8", "replace") for name in names)
