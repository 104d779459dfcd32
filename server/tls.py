"""TLS on the control plane's listener (``serve --tls-cert --tls-key [--tls-client-ca]``).

* Without ``--tls-cert`` the listener is plaintext (the README's loopback quick start).
* With ``--tls-cert``/``--tls-key`` it speaks TLS only.
* With ``--tls-client-ca`` as well, every connection must present a client certificate
  that chains to that CA: the handshake refuses any other. grpc offers no mode that asks
  for a certificate, verifies it when sent and admits callers without one, so the choice
  is all-or-nothing; when ``--auth`` includes ``mtls`` the verified certificate is the
  caller's principal (:mod:`neural.mlops.server.auth.mtls`), otherwise it only gates the
  connection and tokens name the caller. A certificate is never requested unverified.

Rotation without restart: the files are checked (``stat``) on every new connection and
re-read when one changed. A new set is used only after it parses, the key matches the
certificate and the certificate is within its validity period; otherwise the current
one stays and a warning is logged once per change. Connections already open keep the
certificate they were made with.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

import grpc
import structlog

from neural.mlops.server.config import ServerConfig

log = structlog.get_logger(__name__)

EXPIRY_WARNING = dt.timedelta(days=14)


def is_loopback(address: str) -> bool:
    """Whether ``address`` (a host, ``HOST:PORT``, ``[v6]:PORT`` or a unix socket) stays on
    this machine: where plaintext, and a bearer token in plaintext, may go."""
    if address.startswith(("unix:", "unix-abstract:")):
        return True
    for host in (address, address.rsplit(":", 1)[0]):
        host = host.strip("[]")
        if host.lower() == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            continue
    return False  # a host name or wildcard: may be reachable from elsewhere


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path
    client_ca: Path | None = None

    @property
    def paths(self) -> tuple[Path, ...]:
        return (self.cert, self.key) + ((self.client_ca,) if self.client_ca else ())

    def stamp(self) -> tuple[tuple[int, int, int], ...]:
        """Changes whenever one of the files is rewritten or replaced."""
        out = []
        for path in self.paths:
            st = path.stat()
            out.append((st.st_ino, st.st_size, st.st_mtime_ns))
        return tuple(out)

    def load(self) -> grpc.ServerCertificateConfiguration:
        """Read and check the files; ValueError saying what is wrong."""
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        try:
            chain_pem, key_pem = self.cert.read_bytes(), self.key.read_bytes()
            ca_pem = self.client_ca.read_bytes() if self.client_ca else None
        except OSError as exc:
            raise ValueError(f"cannot read TLS file: {exc}") from None
        try:
            chain = x509.load_pem_x509_certificates(chain_pem)
        except ValueError:
            raise ValueError(f"{self.cert}: not a PEM certificate") from None
        try:
            key = serialization.load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError):
            raise ValueError(f"{self.key}: not an unencrypted PEM private key") from None
        spki = serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        if chain[0].public_key().public_bytes(*spki) != key.public_key().public_bytes(*spki):
            raise ValueError(f"{self.key} does not belong to the certificate in {self.cert}")
        now = dt.datetime.now(dt.UTC)
        leaf = chain[0]
        if not leaf.not_valid_before_utc <= now < leaf.not_valid_after_utc:
            raise ValueError(
                f"{self.cert}: valid only from {leaf.not_valid_before_utc:%Y-%m-%d %H:%M} "
                f"to {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
            )
        if leaf.not_valid_after_utc - now < EXPIRY_WARNING:
            log.warning("tls certificate expires soon", cert=str(self.cert),
                        not_after=leaf.not_valid_after_utc.isoformat())
        if ca_pem is not None:
            try:
                x509.load_pem_x509_certificates(ca_pem)
            except ValueError:
                raise ValueError(f"{self.client_ca}: not a PEM CA certificate") from None
        if self.key.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("tls key is readable by other users; chmod 600 it", key=str(self.key))
        log.info("tls certificate loaded", cert=str(self.cert),
                 subject=leaf.subject.rfc4514_string(),
                 not_after=leaf.not_valid_after_utc.isoformat(),
                 client_ca=str(self.client_ca) if self.client_ca else None)
        return grpc.ssl_server_certificate_configuration(
            [(key_pem, chain_pem)], root_certificates=ca_pem
        )


class _Reloader:
    """grpc's certificate fetcher: called by grpc core before every TLS handshake."""

    def __init__(self, files: TlsFiles, stamp: tuple[tuple[int, int, int], ...]) -> None:
        self.files = files
        self.seen = stamp  # the stamp last acted on (loaded, or refused and logged)
        self.lock = threading.Lock()  # handshakes can run on several core threads

    def __call__(self) -> grpc.ServerCertificateConfiguration | None:
        # Must never raise: grpc core calls this outside any Python caller.
        try:
            with self.lock:
                stamp = self.files.stamp()
                if stamp == self.seen:
                    return None
                self.seen = stamp
                return self.files.load()
        except (OSError, ValueError) as exc:
            log.warning("tls files changed but cannot be used; keeping the current ones",
                        error=str(exc))
        except Exception as exc:  # noqa: BLE001 (an exception here would abort the handshake)
            log.error("tls reload failed", error=repr(exc))
        return None


def tls_files(cfg: ServerConfig) -> TlsFiles | None:
    """The configured TLS files, or None for a plaintext listener; ValueError when the
    TLS and mTLS settings do not fit together."""
    if "mtls" in cfg.auth_methods() and not cfg.tls_client_ca:
        raise ValueError("--auth mtls needs --tls-client-ca (and --tls-cert, --tls-key)")
    if not cfg.tls_cert and not cfg.tls_key:
        if cfg.tls_client_ca:
            raise ValueError("--tls-client-ca needs --tls-cert and --tls-key")
        return None
    if not cfg.tls_cert or not cfg.tls_key:
        raise ValueError("--tls-cert and --tls-key go together")
    return TlsFiles(
        Path(cfg.tls_cert),
        Path(cfg.tls_key),
        Path(cfg.tls_client_ca) if cfg.tls_client_ca else None,
    )


def server_credentials(cfg: ServerConfig) -> grpc.ServerCredentials | None:
    """Credentials for ``add_secure_port``, or None for a plaintext listener."""
    files = tls_files(cfg)
    return None if files is None else reloading_credentials(files)


def reloading_credentials(files: TlsFiles) -> grpc.ServerCredentials:
    """Server credentials over ``files`` that pick up rewritten files on new connections
    (the control plane's and the sidecar's listeners); ValueError on unusable files."""
    try:
        stamp = files.stamp()
    except OSError as exc:
        raise ValueError(f"cannot read TLS file: {exc}") from None
    initial = files.load()
    # grpc documents the fetcher's None as "no change"; the stubs leave None out of its type.
    return grpc.dynamic_ssl_server_credentials(
        initial,
        _Reloader(files, stamp),  # type: ignore[arg-type]
        require_client_authentication=files.client_ca is not None,
    )
