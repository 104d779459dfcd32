"""TLS for the sidecar: its channel to the control plane, and optionally its own listener.

The control-plane channel uses TLS when ``--control-plane`` is ``grpcs://HOST:PORT`` or a
CA or client certificate is given. ``--control-plane-ca`` is the CA that signed the
control plane's certificate (default: the system's trust store); ``--client-cert`` and
``--client-key`` present the sidecar's certificate, which makes it an mTLS principal on
a control plane with ``--auth mtls`` (``neural-mlops dev-certs`` writes one with a SPIFFE
ID). A client certificate is read once at start: restart the sidecar (it drains and
keeps its last routing table meanwhile) to use a renewed one.

``--control-plane-token`` sends an API token as ``authorization: Bearer`` instead; a
token never crosses a network in the clear: without TLS it is refused unless the control
plane is on loopback.

The listener uses TLS with ``--tls-cert``/``--tls-key`` (re-read when they change, as the
control plane's are).
"""

from __future__ import annotations

from pathlib import Path

import grpc

from neural.mlops.server.tls import TlsFiles, reloading_credentials
from neural.mlops.sidecar.upstream import CHANNEL_OPTIONS
from neural.mlops.v1.replicas import channel_target, split_addresses

SCHEMES = ("grpc://", "grpcs://")


def split_target(target: str) -> tuple[str, bool]:
    """``(HOST:PORT[,HOST:PORT...], explicit_tls)`` from the address list alone, or after
    ``grpc://`` or ``grpcs://``."""
    for scheme in SCHEMES:
        if target.startswith(scheme):
            return target[len(scheme) :], scheme == "grpcs://"
    return target, False


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"{what}: cannot read {path}: {exc.strerror}") from None


def control_plane_channel(
    target: str, *, ca: str = "", client_cert: str = "", client_key: str = ""
) -> grpc.aio.Channel:
    """The sidecar's one channel to the control plane (plaintext, TLS or mTLS); over
    several replicas (``a:1,b:2``) with gRPC's failover (:mod:`neural.mlops.v1.replicas`)."""
    addresses, explicit_tls = split_target(target)
    address, options = channel_target(split_addresses(addresses), CHANNEL_OPTIONS)
    if not (explicit_tls or ca or client_cert or client_key):
        return grpc.aio.insecure_channel(address, options=options)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read(ca, "control_plane_ca") if ca else None,
        private_key=_read(client_key, "client_key") if client_key else None,
        certificate_chain=_read(client_cert, "client_cert") if client_cert else None,
    )
    return grpc.aio.secure_channel(address, credentials, options=options)


def listener_credentials(tls_cert: str, tls_key: str) -> grpc.ServerCredentials | None:
    """Credentials for the sidecar's own listener, or None for plaintext."""
    if not tls_cert:
        return None
    return reloading_credentials(TlsFiles(Path(tls_cert), Path(tls_key)))
