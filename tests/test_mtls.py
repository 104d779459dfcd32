"""mTLS principals: a real grpc.aio server on server_credentials(), real client certificates."""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509

from neural.mlops.cli.dev_certs import DevCA
from neural.mlops.server.auth.mtls import principal_from_context
from neural.mlops.server.config import ServerConfig
from neural.mlops.server.tls import server_credentials
from neural.mlops.v1 import (
    auth_pb2,
    auth_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
    routing_pb2,
    routing_pb2_grpc,
)

sys.path.insert(0, str(Path(__file__).parent))

from peers.procs import start_sidecar  # noqa: E402
from support.secure_server import SecurePlane, bearer  # noqa: E402

METHOD = "/test.Whoami/Call"


class Whoami(grpc.GenericRpcHandler):
    """Answers with the mTLS principal of the call (``-`` for none)."""

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        async def call(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            principal = principal_from_context(context)
            return b"-" if principal is None else f"{principal.method} {principal.name}".encode()

        return grpc.unary_unary_rpc_method_handler(call)


@pytest.fixture
def ca(tmp_path: Path) -> DevCA:
    authority = DevCA(tmp_path / "pki")
    authority.issue("server", "localhost", [x509.DNSName("localhost")], server=True)
    return authority


async def start(cfg: ServerConfig) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((Whoami(),))
    credentials = server_credentials(cfg)
    port = (
        server.add_insecure_port("127.0.0.1:0")
        if credentials is None
        else server.add_secure_port("127.0.0.1:0", credentials)
    )
    await server.start()
    return server, port


@pytest.fixture
async def mtls_port(ca: DevCA) -> AsyncIterator[int]:
    pki = ca.directory
    server, port = await start(ServerConfig(
        auth="mtls", tls_cert=str(pki / "server.pem"), tls_key=str(pki / "server.key"),
        tls_client_ca=str(pki / "ca.pem"),
    ))
    yield port
    await server.stop(0)


async def whoami(port: int, ca: Path | None, cert: tuple[Path, Path] | None = None) -> str:
    if ca is None:
        channel = grpc.aio.insecure_channel(f"localhost:{port}")
    else:
        channel = grpc.aio.secure_channel(f"localhost:{port}", grpc.ssl_channel_credentials(
            root_certificates=ca.read_bytes(),
            private_key=cert[1].read_bytes() if cert else None,
            certificate_chain=cert[0].read_bytes() if cert else None,
        ))
    async with channel:
        answer = await channel.unary_unary(METHOD)(b"", timeout=10)
    return answer.decode()


SANS = {
    "spiffe": ([x509.UniformResourceIdentifier("spiffe://neural-mlops/sidecar/eu-1"),
                x509.DNSName("eu-1.internal")], "mtls spiffe://neural-mlops/sidecar/eu-1"),
    "dns": ([x509.DNSName("ci.example.org"), x509.RFC822Name("ci@example.org")],
            "mtls ci.example.org"),
    "e-mail, normalized": ([x509.RFC822Name(" Bob@Example.ORG")], "mtls bob@example.org"),
    "no SAN: the CN is not an identity": ([], "-"),
}


@pytest.mark.parametrize("case", list(SANS))
async def test_the_principal_is_the_first_uri_then_dns_then_email_san(
    case: str, ca: DevCA, mtls_port: int
) -> None:
    sans, expected = SANS[case]
    cert = ca.issue("client", "admin", sans)
    assert await whoami(mtls_port, ca.directory / "ca.pem", cert) == expected


async def test_tls_without_a_client_certificate_and_plaintext_have_no_principal(
    ca: DevCA,
) -> None:
    pki = ca.directory
    tls, tls_port = await start(ServerConfig(tls_cert=str(pki / "server.pem"),
                                             tls_key=str(pki / "server.key")))
    plain, plain_port = await start(ServerConfig())
    try:
        assert await whoami(tls_port, pki / "ca.pem") == "-"
        # A certificate offered to a server that did not ask for one is not a principal.
        cert = ca.issue("client", "admin", [x509.DNSName("admin.example.org")])
        assert await whoami(tls_port, pki / "ca.pem", cert) == "-"
        assert await whoami(plain_port, None) == "-"
    finally:
        await tls.stop(0)
        await plain.stop(0)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"auth": "mtls"}, "--auth mtls needs --tls-client-ca"),
        ({"tls_client_ca": "ca.pem"}, "--tls-client-ca needs --tls-cert and --tls-key"),
        ({"tls_cert": "server.pem"}, "--tls-cert and --tls-key go together"),
    ],
)
def test_incomplete_tls_settings_are_refused(settings: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        server_credentials(ServerConfig(**settings))


# --- end to end: the control plane's interceptor takes the certificate as the principal ---


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecurePlane]:
    """Shared by the module's tests: a grant to the sidecar changes no principal."""
    secure = SecurePlane.start(tmp_path_factory.mktemp("plane"))
    yield secure
    secure.stop()


def whoami_rpc(plane: SecurePlane, cert: str, token: str | None = None) -> auth_pb2.WhoAmIResponse:
    with plane.channel(cert) as channel:
        return auth_pb2_grpc.AuthServiceStub(channel).WhoAmI(
            auth_pb2.WhoAmIRequest(), metadata=bearer(token) if token else None, timeout=10
        )


def test_a_client_certificate_is_the_callers_principal(plane: SecurePlane) -> None:
    me = whoami_rpc(plane, "sidecar-eu-1")
    assert (me.principal, me.method, me.authenticated) == (
        "spiffe://neural-mlops/sidecar/eu-1", auth_pb2.AUTH_METHOD_MTLS, True
    )
    # A bearer credential names the caller even on a connection with a certificate.
    token_caller = whoami_rpc(plane, "sidecar-eu-1", plane.admin_token)
    assert (token_caller.principal, token_caller.method) == ("admin", auth_pb2.AUTH_METHOD_TOKEN)


def test_a_sidecar_on_mtls_reports_and_watches_but_cannot_call_admin_rpcs(
    plane: SecurePlane,
) -> None:
    sidecar_id = "spiffe://neural-mlops/sidecar/eu-1"
    with plane.channel() as admin:
        auth_pb2_grpc.AuthServiceStub(admin).CreateGrant(
            auth_pb2.CreateGrantRequest(subject=sidecar_id, role="sidecar"),
            metadata=bearer(plane.admin_token), timeout=10,
        )
    with plane.channel("sidecar-eu-1") as channel:
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            auth.CreateToken(auth_pb2.CreateTokenRequest(name="x", roles=["admin"]), timeout=10)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "auth.admin" in (refused.value.details() or "")
        registry = registry_pb2_grpc.RegistryServiceStub(channel)
        with pytest.raises(grpc.RpcError) as read:
            registry.GetModelVersion(registry_pb2.GetModelVersionRequest(name="m", version="1"),
                                     timeout=10)
        assert read.value.code() == grpc.StatusCode.PERMISSION_DENIED
        routes = routing_pb2_grpc.RoutingServiceStub(channel).WatchRoutes(
            routing_pb2.WatchRoutesRequest(sidecar_id="eu-1"), timeout=10
        )
        assert next(iter(routes)).version >= 0  # the routing table reaches the sidecar
        routes.cancel()

    # And the real sidecar process connects with that certificate and gets its table.
    sidecar = start_sidecar(
        "127.0.0.1:1", plane.server.address, "--sidecar-id", "eu-1",
        "--control-plane-ca", str(plane.certs / "ca.pem"),
        "--client-cert", str(plane.certs / "sidecar-eu-1.pem"),
        "--client-key", str(plane.certs / "sidecar-eu-1.key"),
    )
    try:
        deadline = time.monotonic() + 20
        while sidecar.health()["routing"] != "live" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sidecar.health()["routing"] == "live"
    finally:
        sidecar.stop()
