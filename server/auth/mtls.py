"""The principal of a call made over mTLS: the client certificate the handshake verified.

The server asks for a client certificate only in the mode that also verifies it against
``--tls-client-ca`` (:func:`neural.mlops.server.tls.server_credentials`), so a
certificate identity in the call's auth context is always a verified one.

The identity is the certificate's first SAN URI (a SPIFFE ID such as
``spiffe://neural-mlops/sidecar/eu-1``), else its first SAN DNS name, else its first SAN
e-mail address, in the certificate's order. The subject CN is never used: like TLS
hostname checks, we trust only subject alternative names.
"""

from __future__ import annotations

from typing import Any

import grpc

from neural.mlops.server.auth.principal import Principal, normalize_identity

# grpc core's auth-context properties for the verified peer certificate's SANs.
_SAN_PROPERTIES = ("peer_uri", "peer_dns", "peer_email")


def principal_from_context(context: grpc.aio.ServicerContext[Any, Any]) -> Principal | None:
    """The mTLS principal of this call, or None (no TLS, no client certificate, or a
    certificate without a usable SAN)."""
    properties = context.auth_context()
    if properties.get("transport_security_type") != [b"ssl"]:
        return None
    for key in _SAN_PROPERTIES:
        for value in properties.get(key, ()):
            name = value.decode("utf-8", "replace").strip()
            # The audit trail records this name: never one with control characters.
            if name and name.isprintable():
                return Principal(name=normalize_identity(name), method="mtls")
    return None
