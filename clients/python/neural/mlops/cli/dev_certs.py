"""``neural-mlops dev-certs DIR``: a private CA, a server certificate and client
certificates for trying TLS and mTLS locally.

Files written (PEM; every ``*.key`` is 0600):

* ``ca.pem`` / ``ca.key``: the CA. Kept when it exists, so running the command again
  re-issues leaf certificates under the same CA (the rotation drill in docs/security.md).
* ``server.pem`` / ``server.key``: SAN DNS ``localhost``, IP ``127.0.0.1`` and ``::1``
  plus every ``--host``; ``serve --tls-cert server.pem --tls-key server.key``.
* ``client-NAME.pem`` / ``.key`` per ``--client`` (default ``admin``): SAN URI
  ``spiffe://neural-mlops/user/NAME``, the principal of an mTLS call.
* ``sidecar-NAME.pem`` / ``.key`` per ``--sidecar`` (default ``default``): SAN URI
  ``spiffe://neural-mlops/sidecar/NAME``, for ``sidecar --client-cert/--client-key``.

These are development certificates: use your organisation's CA in production.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

SPIFFE_TRUST_DOMAIN = "neural-mlops"


@dataclass(frozen=True)
class DevCertPlan:
    directory: Path
    hosts: tuple[str, ...] = ()
    clients: tuple[str, ...] = ("admin",)
    sidecars: tuple[str, ...] = ("default",)
    days: int = 365


def client_spiffe_id(name: str) -> str:
    return f"spiffe://{SPIFFE_TRUST_DOMAIN}/user/{name}"


def sidecar_spiffe_id(name: str) -> str:
    return f"spiffe://{SPIFFE_TRUST_DOMAIN}/sidecar/{name}"


def write_private(path: Path, data: bytes) -> None:
    """Create ``path`` readable by its owner only; an old file is replaced, never reused,
    so a key is never briefly readable under the old file's permissions."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # the umask cannot widen it, but be explicit
        os.write(fd, data)
    finally:
        os.close(fd)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _key_usage(*, sign_certs: bool) -> Any:
    from cryptography import x509

    return x509.KeyUsage(
        digital_signature=not sign_certs, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=sign_certs,
        crl_sign=sign_certs, encipher_only=False, decipher_only=False,
    )


class DevCA:
    """The CA in ``directory`` (created unless ``ca.pem``/``ca.key`` exist) and the leaf
    certificates it issues there."""

    def __init__(self, directory: Path) -> None:
        # Imported here: `neural-mlops --help` must not pay for cryptography.
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.directory = directory
        self.written: list[Path] = []
        directory.mkdir(parents=True, exist_ok=True)
        self.now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)  # tolerate clock skew
        ca_pem, ca_key = directory / "ca.pem", directory / "ca.key"
        if ca_pem.exists() and ca_key.exists():
            self.cert = x509.load_pem_x509_certificate(ca_pem.read_bytes())
            key = serialization.load_pem_private_key(ca_key.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError(f"{ca_key}: expected an EC private key")
            self.key = key
            return
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "neural-mlops dev CA")])
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now)
            .not_valid_after(self.now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(sign_certs=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), False)
            .sign(self.key, hashes.SHA256())
        )
        write_private(ca_key, _pem_key(self.key))
        ca_pem.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.written += [ca_pem, ca_key]

    def issue(self, stem: str, common_name: str, sans: list[Any], *, server: bool = False,
              days: int = 365) -> tuple[Path, Path]:
        """Write ``STEM.pem`` and ``STEM.key`` (0600): a leaf for TLS servers or clients."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now)
            .not_valid_after(self.now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(sign_certs=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        cert_path, key_path = self.directory / f"{stem}.pem", self.directory / f"{stem}.key"
        write_private(key_path, _pem_key(key))
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.written += [cert_path, key_path]
        return cert_path, key_path


def write_dev_certs(plan: DevCertPlan) -> list[Path]:
    """Write the CA (unless present), the server and the client certificates."""
    from cryptography import x509

    ca = DevCA(plan.directory)
    server_sans: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    for host in plan.hosts:
        try:
            server_sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            server_sans.append(x509.DNSName(host))
    ca.issue("server", "localhost", server_sans, server=True, days=plan.days)
    for name in plan.clients:
        uri = x509.UniformResourceIdentifier(client_spiffe_id(name))
        ca.issue(f"client-{name}", name, [uri], days=plan.days)
    for name in plan.sidecars:
        uri = x509.UniformResourceIdentifier(sidecar_spiffe_id(name))
        ca.issue(f"sidecar-{name}", f"sidecar {name}", [uri], days=plan.days)
    return ca.written


def _name(value: str) -> str:
    # The name becomes a file name and a SPIFFE path segment: keep it to a safe alphabet.
    if not value or not all(c.isalnum() or c in "-_." for c in value) or value.startswith("."):
        raise argparse.ArgumentTypeError(f"{value!r}: use letters, digits, '-', '_' or '.'")
    return value


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "dev-certs",
        help="write a development CA, server and client certificates (TLS/mTLS)",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("directory", type=Path, metavar="DIR", help="folder to write into")
    p.add_argument("--host", action="append", default=[],
                   help="another server name or IP in the server certificate (repeatable)")
    p.add_argument("--client", action="append", type=_name, default=None,
                   help="client certificate NAME (repeatable; default admin)")
    p.add_argument("--sidecar", action="append", type=_name, default=None,
                   help="sidecar certificate NAME (repeatable; default default)")
    p.add_argument("--days", type=int, default=365, help="leaf validity (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print the written files as JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.days < 1:
        print("error: invalid argument: --days must be >= 1", file=sys.stderr)
        return 2
    plan = DevCertPlan(
        directory=args.directory,
        hosts=tuple(args.host),
        clients=tuple(args.client or ("admin",)),
        sidecars=tuple(args.sidecar or ("default",)),
        days=args.days,
    )
    written = write_dev_certs(plan)
    if args.json:
        from neural.mlops.cli._output import print_json

        print_json({"written": written})
    else:
        for path in written:
            print(path)
    return 0
