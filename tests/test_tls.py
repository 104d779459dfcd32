"""TLS on every channel, with real processes and the certificates `dev-certs` writes."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from grpc_health.v1 import health_pb2, health_pb2_grpc

sys.path.insert(0, str(Path(__file__).parent))

from peers.procs import start_sidecar  # noqa: E402
from support.processes import ServerProcess, start_server  # noqa: E402
from support.secure_server import SecurePlane  # noqa: E402

from neural.mlops.cli import main as cli_main  # noqa: E402
from neural.mlops.cli.dev_certs import DevCertPlan, write_dev_certs  # noqa: E402
from neural.mlops.registry import ModelRegistry  # noqa: E402
from neural.mlops.server.errors import InvalidArgument, Unavailable  # noqa: E402


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("certs")
    write_dev_certs(DevCertPlan(directory, clients=("admin",), sidecars=("eu-1",)))
    return directory


@pytest.fixture(scope="module")
def other_certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second, unrelated CA with its own server and client certificates."""
    directory = tmp_path_factory.mktemp("other-certs")
    write_dev_certs(DevCertPlan(directory))
    return directory


def tls_env(certs: Path, *, client_ca: bool) -> dict[str, str]:
    env = {
        "NEURAL_MLOPS_TLS_CERT": str(certs / "server.pem"),
        "NEURAL_MLOPS_TLS_KEY": str(certs / "server.key"),
    }
    if client_ca:
        env["NEURAL_MLOPS_TLS_CLIENT_CA"] = str(certs / "ca.pem")
    return env


def health(address: str, ca: Path | None, client: tuple[Path, Path] | None = None) -> str:
    """SERVING, or the status code name the connection attempt ended with."""
    if ca is None:
        channel = grpc.insecure_channel(address)
    else:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=ca.read_bytes(),
            private_key=client[1].read_bytes() if client else None,
            certificate_chain=client[0].read_bytes() if client else None,
        )
        channel = grpc.secure_channel(address, credentials)
    with channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=10
            )
        except grpc.RpcError as exc:
            return exc.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)


@pytest.fixture
def tls_server(tmp_path: Path, certs: Path) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path / "data", env=tls_env(certs, client_ca=False))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def mtls_server(tmp_path_factory: pytest.TempPathFactory, certs: Path
                ) -> Iterator[ServerProcess]:
    """Shared by the module's tests: they only connect to it."""
    srv = start_server(tmp_path_factory.mktemp("mtls") / "data",
                       env=tls_env(certs, client_ca=True))
    yield srv
    srv.stop()


def test_dev_certs_writes_private_keys_0600_and_keeps_its_ca(tmp_path: Path) -> None:
    directory = tmp_path / "dev"
    assert (
        cli_main(["dev-certs", str(directory), "--sidecar", "eu-1", "--host", "cp.internal"]) == 0
    )
    for key in directory.glob("*.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    server = x509.load_pem_x509_certificate((directory / "server.pem").read_bytes())
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(sans.get_values_for_type(x509.DNSName)) == {"localhost", "cp.internal"}
    assert {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    sidecar = x509.load_pem_x509_certificate((directory / "sidecar-eu-1.pem").read_bytes())
    uris = sidecar.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert uris.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://neural-mlops/sidecar/eu-1"
    ]

    ca_before, server_before = (directory / "ca.pem").read_bytes(), server.serial_number
    assert cli_main(["dev-certs", str(directory)]) == 0  # re-issue under the same CA
    assert (directory / "ca.pem").read_bytes() == ca_before
    again = x509.load_pem_x509_certificate((directory / "server.pem").read_bytes())
    assert again.serial_number != server_before
    again.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_before))


def test_a_tls_control_plane_refuses_plaintext_and_untrusted_servers_names(
    tls_server: ServerProcess, certs: Path, other_certs: Path
) -> None:
    port = tls_server.address.rsplit(":", 1)[1]
    assert health(tls_server.address, certs / "ca.pem") == "SERVING"
    assert health(f"localhost:{port}", certs / "ca.pem") == "SERVING"
    assert health(tls_server.address, None) == "UNAVAILABLE"  # plaintext
    assert health(tls_server.address, other_certs / "ca.pem") == "UNAVAILABLE"  # not our CA


def test_with_a_client_ca_only_holders_of_its_certificates_connect(
    mtls_server: ServerProcess, certs: Path, other_certs: Path
) -> None:
    ca = certs / "ca.pem"
    admin = (certs / "client-admin.pem", certs / "client-admin.key")
    stranger = (other_certs / "client-admin.pem", other_certs / "client-admin.key")
    assert health(mtls_server.address, ca, admin) == "SERVING"
    assert health(mtls_server.address, ca) == "UNAVAILABLE"  # no client certificate
    assert health(mtls_server.address, ca, stranger) == "UNAVAILABLE"  # another CA's


def test_a_rewritten_server_certificate_is_used_without_a_restart(
    tmp_path: Path, certs: Path, other_certs: Path
) -> None:
    live = tmp_path / "live"
    live.mkdir()
    for name in ("server.pem", "server.key"):
        shutil.copy(certs / name, live / name)
    srv = start_server(tmp_path / "data", env=tls_env(live, client_ca=False))
    try:
        assert health(srv.address, certs / "ca.pem") == "SERVING"
        # Key first, then certificate, as a careless renewal script would: the server must
        # never serve the mismatched pair it sees in between.
        shutil.copy(other_certs / "server.key", live / "server.key")
        assert health(srv.address, certs / "ca.pem") == "SERVING"
        shutil.copy(other_certs / "server.pem", live / "server.pem")
        assert health(srv.address, other_certs / "ca.pem") == "SERVING"
        assert health(srv.address, certs / "ca.pem") == "UNAVAILABLE"
    finally:
        srv.stop()


def test_serve_refuses_a_key_that_does_not_belong_to_the_certificate(
    tmp_path: Path, certs: Path
) -> None:
    env = tls_env(certs, client_ca=False) | {
        "NEURAL_MLOPS_TLS_KEY": str(certs / "client-admin.key")
    }
    result = subprocess.run(
        [sys.executable, "-m", "neural.mlops", "serve", "--data-dir", str(tmp_path / "d"),
         "--listen", "127.0.0.1:0"],
        capture_output=True, text=True, timeout=60, env={**os.environ, **env},
    )
    assert result.returncode != 0
    assert "does not belong to the certificate" in result.stderr


def test_a_sidecar_reaches_an_mtls_control_plane_with_its_certificate(
    mtls_server: ServerProcess, certs: Path
) -> None:
    tls = ["--control-plane-ca", str(certs / "ca.pem")]
    with_cert = tls + ["--client-cert", str(certs / "sidecar-eu-1.pem"),
                       "--client-key", str(certs / "sidecar-eu-1.key")]
    good = start_sidecar("127.0.0.1:1", mtls_server.address, *with_cert)
    bad = start_sidecar("127.0.0.1:1", mtls_server.address, *tls)
    try:
        deadline = time.monotonic() + 20
        while not good.health()["control_plane_connected"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert good.health()["control_plane_connected"]
        assert not bad.health()["control_plane_connected"]  # refused at the handshake
    finally:
        good.stop()
        bad.stop()


def test_a_sidecar_listener_serves_tls(certs: Path) -> None:
    sidecar = start_sidecar("127.0.0.1:1", None, "--tls-cert", str(certs / "server.pem"),
                            "--tls-key", str(certs / "server.key"))
    try:
        assert health(sidecar.address, certs / "ca.pem") == "SERVING"
        assert health(sidecar.address, None) == "UNAVAILABLE"
    finally:
        sidecar.stop()


def test_a_sidecar_will_not_send_a_token_in_the_clear_to_another_host() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "neural.mlops", "sidecar", "--control-plane", "10.1.2.3:50051",
         "--control-plane-token", "nmo_x_y"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "sent in the clear" in result.stderr


# --- the Python API and the CLI over grpcs:// ---


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecurePlane]:
    """Shared by the module's tests (one registers the only model; the other reads)."""
    secure = SecurePlane.start(tmp_path_factory.mktemp("plane"))
    yield secure
    secure.stop()


def test_the_python_api_works_over_grpcs_with_environment_credentials(
    plane: SecurePlane, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in plane.env(token=plane.admin_token).items():
        monkeypatch.setenv(key, value)
    target = f"grpcs://{plane.server.address}"
    with ModelRegistry(target) as registry:  # the token comes from NEURAL_MLOPS_TOKEN
        version = registry.register_model("churn", "1", artifact_uri="s3://models/churn.pkl",
                                          created_by="admin")
        assert version.created_by == "admin"  # the token's principal
        assert [m.name for m in registry.list_models()] == ["churn"]
    monkeypatch.delenv("NEURAL_MLOPS_CLIENT_CERT")
    monkeypatch.delenv("NEURAL_MLOPS_CLIENT_KEY")
    with ModelRegistry(target) as registry, pytest.raises(Unavailable):
        registry.list_models()  # no client certificate: the handshake is refused


def test_the_cli_takes_tls_flags_and_environment(plane: SecurePlane) -> None:
    certs, target = plane.certs, f"grpcs://{plane.server.address}"
    flags = ["--target", target, "--ca-cert", str(certs / "ca.pem"),
             "--client-cert", str(certs / "client-admin.pem"),
             "--client-key", str(certs / "client-admin.key")]
    listed = cli(["registry", "list", *flags, "--token", plane.admin_token, "--json"])
    assert listed.returncode == 0, listed.stderr
    # Environment only, no token: the client certificate is the principal (mTLS).
    me = cli(["auth", "whoami", "--json"], env=plane.env())
    assert me.returncode == 0, me.stderr
    assert '"spiffe://neural-mlops/user/admin"' in me.stdout
    untrusted = cli(["registry", "list", *flags[:2], "--token", plane.admin_token])
    assert untrusted.returncode == 8  # UNAVAILABLE: the system trust store lacks our CA


def test_a_token_is_never_sent_in_the_clear_to_another_host() -> None:
    with pytest.raises(InvalidArgument, match="in the clear"):
        ModelRegistry("grpc://10.1.2.3:50051", token="nmo_x_y")


def cli(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NEURAL_MLOPS_")}
    return subprocess.run([sys.executable, "-m", "neural.mlops", *argv], capture_output=True,
                          text=True, timeout=120, env={**clean, **(env or {})})
