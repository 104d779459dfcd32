"""The console of a TLS control plane: served over HTTPS with the server's certificate,
and reaching the gRPC API through its private plaintext socket (the certificate need not
name loopback; calls still need their credentials)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).parent))

from support.console import Console, bootstrap_admin, start_console_server  # noqa: E402

from neural.mlops.cli.dev_certs import DevCertPlan, write_dev_certs  # noqa: E402

pytestmark = pytest.mark.storage


def test_a_tls_control_plane_serves_its_console_over_https(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    write_dev_certs(DevCertPlan(certs))
    data = tmp_path / "data"
    admin = bootstrap_admin(data)
    server, url = start_console_server(
        data, "--auth", "token,mtls", "--tls-cert", str(certs / "server.pem"),
        "--tls-key", str(certs / "server.key"), "--tls-client-ca", str(certs / "ca.pem"))
    try:
        assert url.startswith("https://127.0.0.1:")
        console = Console(url)
        console.http.trust_env = False  # REQUESTS_CA_BUNDLE would win over verify
        console.http.verify = str(certs / "ca.pem")
        assert console.login(token=admin).status_code == 200
        who = console.ok("AuthService", "WhoAmI")
        assert who["authenticated"] is True and who["method"].lower().endswith("token")
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(url + "/api/session", timeout=10)  # a client not trusting the CA
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(url.replace("https://", "http://") + "/", timeout=10)
    finally:
        server.stop()
    leftovers = list(Path("/tmp").glob("neural-mlops-console-*"))
    assert all(p.stat().st_mode & 0o077 == 0 for p in leftovers)  # private, if any remain
