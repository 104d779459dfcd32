"""A control plane with every way in: TLS, client certificates, API tokens, OIDC and mTLS.

``SecurePlane.start(tmp)`` writes dev certificates and an RSA-signed OIDC issuer's JWKS,
bootstraps an admin token in a fresh store and starts ``neural-mlops serve`` with
``--auth token,oidc,mtls``. Used by tests/test_oidc.py, tests/test_mtls.py and
benchmarks/auth_cost.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from joserfc import jwt
from joserfc.jwk import RSAKey

from neural.mlops.cli.dev_certs import DevCertPlan, write_dev_certs
from support.databases import store_args
from support.processes import ServerProcess, start_server

ISSUER = "https://idp.example.com/realms/ml"
AUDIENCE = "neural-mlops"


@dataclass
class SecurePlane:
    server: ServerProcess
    certs: Path
    admin_token: str
    signing_key: RSAKey

    @classmethod
    def start(
        cls,
        tmp: Path,
        *,
        auth: str = "token,oidc,mtls",
        clients: tuple[str, ...] = ("admin",),
        sidecars: tuple[str, ...] = ("eu-1",),
    ) -> SecurePlane:
        certs = tmp / "certs"
        write_dev_certs(DevCertPlan(certs, clients=clients, sidecars=sidecars))
        key = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
        jwks = tmp / "jwks.json"
        jwks.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
        data = tmp / "data"
        bootstrap = subprocess.run(
            [sys.executable, "-m", "neural.mlops", "auth", "bootstrap", *store_args(data),
             "--json"],
            capture_output=True, text=True, timeout=120, check=True,
        )
        token = json.loads(bootstrap.stdout)["token"]
        server = start_server(
            data,
            "--auth", auth,
            "--tls-cert", str(certs / "server.pem"), "--tls-key", str(certs / "server.key"),
            "--tls-client-ca", str(certs / "ca.pem"),
            "--oidc-issuer", ISSUER, "--oidc-audience", AUDIENCE, "--oidc-jwks", str(jwks),
        )
        return cls(server, certs, token, key)

    def jwt(self, email: str, *, groups: tuple[str, ...] = (), lifetime: int = 3600) -> str:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": email, "email": email,
                  "groups": list(groups), "iat": now, "exp": now + lifetime}
        return jwt.encode({"alg": "RS256", "kid": "k1"}, claims, self.signing_key)

    def credentials(self, cert: str = "client-admin") -> grpc.ChannelCredentials:
        """TLS credentials presenting ``CERT.pem`` (every connection needs one here)."""
        return grpc.ssl_channel_credentials(
            root_certificates=(self.certs / "ca.pem").read_bytes(),
            private_key=(self.certs / f"{cert}.key").read_bytes(),
            certificate_chain=(self.certs / f"{cert}.pem").read_bytes(),
        )

    def channel(self, cert: str = "client-admin") -> grpc.Channel:
        return grpc.secure_channel(self.server.address, self.credentials(cert))

    def env(self, cert: str = "client-admin", token: str | None = None) -> dict[str, str]:
        """What a Python API or CLI process needs to reach this plane over grpcs://."""
        env = {
            "NEURAL_MLOPS_CA_CERT": str(self.certs / "ca.pem"),
            "NEURAL_MLOPS_CLIENT_CERT": str(self.certs / f"{cert}.pem"),
            "NEURAL_MLOPS_CLIENT_KEY": str(self.certs / f"{cert}.key"),
            "NEURAL_MLOPS_TARGET": f"grpcs://{self.server.address}",
        }
        if token:
            env["NEURAL_MLOPS_TOKEN"] = token
        return env

    def stop(self) -> None:
        self.server.stop()


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)
