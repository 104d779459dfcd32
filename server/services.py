"""The domain services of one store, wired together.

Both the gRPC control plane and the embedded Python API build exactly this object, so
the two modes run the same code. A new domain adds its service here and its servicer in
:mod:`neural.mlops.server.app`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from neural.mlops.server.audit.service import AuditService
from neural.mlops.server.auth.service import AuthService
from neural.mlops.server.clock import Clock, SystemClock
from neural.mlops.server.config import ServerConfig
from neural.mlops.server.coordination import Lease
from neural.mlops.server.deployments.service import DeploymentService
from neural.mlops.server.errors import NotFound
from neural.mlops.server.experiments.service import ExperimentService
from neural.mlops.server.identity import CallContext, reset_call, set_call
from neural.mlops.server.registry.artifacts import open_artifact_store
from neural.mlops.server.registry.service import RegistryService
from neural.mlops.server.routing.notify import SAFETY_POLL_S, RouteNotices
from neural.mlops.server.routing.service import RoutingService
from neural.mlops.server.storage import Database


@dataclass
class Services:
    data_dir: Path
    db: Database
    clock: Clock
    registry: RegistryService
    routing: RoutingService
    audit: AuditService
    deployments: DeploymentService
    experiments: ExperimentService
    auth: AuthService
    # PostgreSQL only: what lets several replicas share the store (docs/operations.md).
    notices: RouteNotices | None = None
    leases: list[Lease] = field(default_factory=list)

    @classmethod
    async def open(
        cls, data_dir: str | Path, *, database_url: str = "", clock: Clock | None = None,
        config: ServerConfig | None = None,
    ) -> Services:
        """``config``: the domains' settings (deploy gate, allowed upstreams); without it,
        embedded mode reads them from the environment through the same loader."""
        config = config if config is not None else ServerConfig.load({})
        data_dir = Path(data_dir).resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        clock = clock or SystemClock()
        if database_url:
            db = await Database.open(database_url, clock=clock)
        else:
            db = await Database.open_dir(data_dir, clock=clock)
        artifacts = open_artifact_store(config.artifact_location(), data_dir,
                                        endpoint_url=config.s3_endpoint_url, clock=clock)
        registry = RegistryService(db, data_dir, clock=clock, artifacts=artifacts)
        await registry.recover()
        if db.is_sqlite:
            routing = RoutingService(db, clock=clock)
            notices = None
        else:
            routing = RoutingService(db, clock=clock, poll_seconds=SAFETY_POLL_S)
            notices = RouteNotices(db, routing.invalidate)
        audit = AuditService(db, data_dir, clock=clock, anchor=config.anchor_path())
        # Before any caller can write: a broken chain refuses every change from here on.
        await audit.check_at_open(config.acknowledged_seq())
        deployments = DeploymentService(db, clock=clock, registry=registry,
                                        gate_policy=config.gate_policy(),
                                        allowed_upstreams=config.upstream_allow_list(),
                                        on_routes_changed=routing.invalidate)
        routing.add_provider(deployments)
        experiments = ExperimentService(db, clock=clock, routing=routing, registry=registry.port)
        routing.add_provider(experiments)
        auth = AuthService(db, clock=clock)
        return cls(
            data_dir=data_dir,
            db=db,
            clock=clock,
            registry=registry,
            routing=routing,
            audit=audit,
            deployments=deployments,
            experiments=experiments,
            auth=auth,
            notices=notices,
        )

    async def model_of(self, kind: str, resource_id: str) -> str:
        """The model a deployment, test or shadow is about ("" when there is none): how a
        grant scoped to model globs applies to calls that name only an id."""
        try:
            if kind == "deployment":
                return (await self.deployments.get_deployment(resource_id)).model_name
            if kind == "test":
                return (await self.experiments.get_test(resource_id)).model_name
            if kind == "shadow":
                return (await self.deployments.get_shadow(resource_id)).model_name
        except NotFound:
            return ""
        raise ValueError(f"unknown resource kind {kind!r}")

    async def start_background(self) -> None:
        """Start long-running loops (rollout controller, checkpoints); the server calls it.
        Their changes carry the control plane's own peer, so the compliance report tells
        them from callers' changes. On PostgreSQL the controller and the checkpoints run
        under leases (one replica at a time) and route changes arrive as notices."""
        token = set_call(CallContext(peer="control-plane"))
        try:
            self.routing.start()
            self.experiments.start()
            if self.notices is None:
                self.deployments.start()
                await self.audit.start()
                return
            self.notices.start()
            self.leases = [Lease(self.db, "rollout-controller", self.deployments.run_controller)]
            if self.audit.checkpoint_interval > 0:
                self.leases.append(Lease(self.db, "audit-checkpoints", self.audit.notary.run))
            for lease in self.leases:
                lease.start()
        finally:
            reset_call(token)

    async def close(self) -> None:
        for lease in self.leases:
            await lease.stop()
        if self.notices is not None:
            await self.notices.stop()
        await self.deployments.stop()
        await self.experiments.stop()
        await self.routing.stop()
        await self.audit.close()  # final signed checkpoint of the chain head
        await self.db.close()
