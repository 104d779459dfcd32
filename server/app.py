"""The control-plane process: a grpc.aio server over :class:`Services`.

Standard health checking and server reflection (v1 and v1alpha) are always on. SIGTERM
drains in-flight calls for ``grace_seconds``, closes the store and exits 0.
"""

from __future__ import annotations

import asyncio
import ipaddress
import shutil
import signal
import tempfile
from pathlib import Path

import grpc
import prometheus_client
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from neural.mlops.server.audit.servicer import AuditServicer
from neural.mlops.server.auth.guard import CallGuard
from neural.mlops.server.auth.oidc import OidcVerifier
from neural.mlops.server.auth.servicer import AuthServicer
from neural.mlops.server.config import ServerConfig
from neural.mlops.server.console.oidc_login import OidcLogin
from neural.mlops.server.console.server import (
    ConsoleServer,
    ConsoleSettings,
    console_listen,
    grpc_target,
)
from neural.mlops.server.deployments.servicer import DeploymentServicer
from neural.mlops.server.experiments.servicer import ExperimentServicer
from neural.mlops.server.grpc_errors import DomainInterceptor
from neural.mlops.server.reflection import enable_reflection
from neural.mlops.server.registry.servicer import RegistryServicer
from neural.mlops.server.routing.servicer import RoutingServicer
from neural.mlops.server.services import Services
from neural.mlops.server.storage import StoreWatch
from neural.mlops.server.tls import server_credentials
from neural.mlops.v1 import (
    audit_pb2,
    audit_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    deployments_pb2,
    deployments_pb2_grpc,
    experiments_pb2,
    experiments_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
    routing_pb2,
    routing_pb2_grpc,
)
from neural.mlops.v1.limits import MAX_MESSAGE_BYTES as MAX_MESSAGE

log = structlog.get_logger(__name__)


def add_servicers(
    server: grpc.aio.Server, services: Services, auth_methods: frozenset[str] = frozenset()
) -> list[str]:
    """Register every domain servicer; returns the full service names (for reflection)."""
    auth_pb2_grpc.add_AuthServiceServicer_to_server(
        AuthServicer(services.auth, auth_methods or frozenset({"none"})), server
    )
    registry_pb2_grpc.add_RegistryServiceServicer_to_server(RegistryServicer(services), server)
    routing_pb2_grpc.add_RoutingServiceServicer_to_server(RoutingServicer(services), server)
    audit_pb2_grpc.add_AuditServiceServicer_to_server(AuditServicer(services), server)
    deployments_pb2_grpc.add_DeploymentServiceServicer_to_server(
        DeploymentServicer(services), server
    )
    experiments_pb2_grpc.add_ExperimentServiceServicer_to_server(
        ExperimentServicer(services), server
    )
    return [
        auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name,
        registry_pb2.DESCRIPTOR.services_by_name["RegistryService"].full_name,
        routing_pb2.DESCRIPTOR.services_by_name["RoutingService"].full_name,
        audit_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name,
        deployments_pb2.DESCRIPTOR.services_by_name["DeploymentService"].full_name,
        experiments_pb2.DESCRIPTOR.services_by_name["ExperimentService"].full_name,
    ]


def is_loopback(listen: str) -> bool:
    """Whether ``listen`` (HOST:PORT, or a unix: socket) accepts only this machine."""
    if listen.startswith(("unix:", "unix-abstract:")):
        return True
    host = listen.rsplit(":", 1)[0].strip("[]") if ":" in listen else listen
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name or wildcard: may be reachable from elsewhere


def check_exposure(config: ServerConfig) -> None:
    """Declared identities are acceptable only from this machine: without authentication,
    a non-loopback listen address needs --insecure. mTLS needs the CA that verifies
    client certificates."""
    methods = config.auth_methods()
    if "mtls" in methods and not config.tls_client_ca:
        raise ValueError("--auth mtls needs --tls-client-ca (and --tls-cert/--tls-key)")
    if not config.authenticates and not config.insecure and not is_loopback(config.listen):
        raise ValueError(
            f"refusing to listen on {config.listen} without authentication: anyone who can "
            "reach it could act under any name. Use --auth token|oidc|mtls, or --insecure "
            "to accept declared identities from the network anyway."
        )
    http = console_listen(config.http_listen)
    if http is not None and not config.authenticates and not config.insecure \
            and not is_loopback(f"{http.host}:{http.port}"):
        raise ValueError(
            f"refusing to serve the console on {config.http_listen} without authentication; "
            "use --auth token|oidc, or --insecure"
        )
    if http is not None and not (config.console_session_hours > 0
                                 and config.console_idle_minutes > 0):
        raise ValueError("--console-session-hours and --console-idle-minutes must be positive")


class ControlPlane:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.services: Services | None = None
        self.server: grpc.aio.Server | None = None
        self.health = health.aio.HealthServicer()
        self.store_watch: StoreWatch | None = None
        self.console: ConsoleServer | None = None
        self._console_dir: Path | None = None
        self.port = 0

    async def start(self) -> None:
        check_exposure(self.config)
        credentials = server_credentials(self.config)  # bad TLS files fail before the store opens
        oidc = OidcVerifier.from_config(self.config)
        methods = self.config.auth_methods()
        self.services = await Services.open(
            self.config.data_dir, database_url=self.config.database_url, config=self.config
        )
        guard = None
        if self.config.authenticates:
            s = self.services
            guard = CallGuard(methods, s.auth, oidc, s.model_of, s.db, s.clock)
        else:
            log.warning("authentication is off: callers declare who they are and every "
                        "change is recorded as unauthenticated (serve --auth token|oidc|mtls)")
        self.server = grpc.aio.server(
            interceptors=[DomainInterceptor(guard)],
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE),
                ("grpc.max_send_message_length", MAX_MESSAGE),
                ("grpc.so_reuseport", 0),
            ],
        )
        names = add_servicers(self.server, self.services, methods)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        enable_reflection(self.server, [*names, health.SERVICE_NAME])
        try:
            if credentials is None:
                self.port = self.server.add_insecure_port(self.config.listen)
            else:
                self.port = self.server.add_secure_port(self.config.listen, credentials)
        except RuntimeError:  # grpc's "Failed to bind": say it in one line
            self.port = 0
        if self.port == 0:
            await self.services.close()
            raise OSError(f"cannot listen on {self.config.listen}: the address is in use "
                          "or not available on this machine")
        console_target = self._console_port(credentials is not None)
        await self.server.start()
        await self.services.start_background()
        await self._start_console(console_target, names, oidc)
        await self._set_health(True, names)
        # NOT_SERVING while the database cannot be reached, SERVING again when it is back.
        self.store_watch = StoreWatch(self.services.db,
                                      lambda up: self._set_health(up, names))
        self.store_watch.start()

    def _console_port(self, tls: bool) -> str:
        """The gRPC target the console calls. With TLS, a plaintext socket in a private
        folder (mode 0700) that only this user can reach: the server's certificate need
        not name loopback, and calls still need their credentials."""
        if console_listen(self.config.http_listen) is None or not tls:
            return ""
        assert self.server is not None
        self._console_dir = Path(tempfile.mkdtemp(prefix="neural-mlops-console-"))
        target = f"unix:{self._console_dir / 'grpc.sock'}"
        self.server.add_insecure_port(target)
        return target

    async def _start_console(self, target: str, names: list[str],
                             oidc: OidcVerifier | None) -> None:
        listen = console_listen(self.config.http_listen)
        if listen is None:
            return
        assert self.services is not None
        settings = ConsoleSettings(
            listen, target or grpc_target(self.config.listen, self.port),
            tuple(n for n in names if n.startswith("neural.mlops.")),
            self.config.auth_methods(), self.config.tls_cert, self.config.tls_key,
            self.config.console_session_hours,
            OidcLogin(oidc, oidc.audience) if oidc is not None else None,
            idle_minutes=self.config.console_idle_minutes)
        self.console = ConsoleServer(settings, self.services.db)
        try:
            await self.console.start()
        except OSError:
            self.console = None
            await self.stop()
            raise

    async def _set_health(self, serving: bool, names: list[str]) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving \
            else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ("", *names):
            await self.health.set(name, status)

    @property
    def address(self) -> str:
        host = self.config.listen.rsplit(":", 1)[0]
        return f"{host}:{self.port}"

    async def stop(self) -> None:
        if self.console is not None:
            await self.console.stop()
        if self.store_watch is not None:
            await self.store_watch.stop()
        await self.health.enter_graceful_shutdown()
        if self.server is not None:
            await self.server.stop(self.config.grace_seconds)
        if self.services is not None:
            await self.services.close()
        if self._console_dir is not None:
            shutil.rmtree(self._console_dir, ignore_errors=True)


async def serve(config: ServerConfig) -> int:
    plane = ControlPlane(config)
    await plane.start()
    if config.metrics_listen:
        host, _, port = config.metrics_listen.rpartition(":")
        try:
            prometheus_client.start_http_server(int(port), addr=host or "127.0.0.1")
        except (OSError, ValueError) as exc:
            await plane.stop()
            raise OSError(f"cannot serve metrics on {config.metrics_listen}: {exc}") from None
    log.info("control plane serving", address=plane.address, data_dir=str(config.data_dir))
    print(f"neural-mlops control plane listening on {plane.address}", flush=True)
    if plane.console is not None:
        log.info("console serving", url=plane.console.url)
        print(f"neural-mlops console at {plane.console.url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("draining", grace_seconds=config.grace_seconds)
    await plane.stop()
    log.info("stopped")
    return 0
