"""The registry gate: what a deployment needs from the model registry, and tells it back.

Before a serving rollout starts, the gate reads the version's stage (it must be approved
into PRODUCTION, or STAGING under :attr:`GatePolicy.STAGING`, unless an audited override
reason is given). When the registry lives in this store (:class:`LocalRegistryGate`), a
completed rollout moves the version to PRODUCTION and a rollback puts the replaced
version back, both in the deployment's own transaction, through the registry's public
:class:`~neural.mlops.server.registry.port.RegistryPort`. A registry in another store
(:class:`KnownStageGate`) is asked by the caller beforehand and never written.
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from neural.mlops.server.deployments.model import (
    Deployment,
    DeploymentStrategy,
    GatePolicy,
)
from neural.mlops.server.deployments.planning import ValidSpec
from neural.mlops.server.errors import FailedPrecondition, NotFound
from neural.mlops.server.registry.model import ModelStage
from neural.mlops.server.registry.port import RegistryPort
from neural.mlops.server.storage import Change

_PRODUCTION = ModelStage.PRODUCTION.value


class RegistryGate(Protocol):
    """What the deployment manager reads about registry stages when a rollout starts."""

    async def stage(self, conn: AsyncConnection, name: str, version: str) -> str:
        """The version's stage (``"production"`` ...); raises NotFound if unknown."""
        ...

    async def previous_production(self, conn: AsyncConnection, name: str, version: str) -> str:
        """The version that served before ``version`` was approved ("" if none)."""
        ...


class LocalRegistryGate:
    """The registry in the same store: reads run on the deployment's connection."""

    def __init__(self, port: RegistryPort) -> None:
        self.port = port

    async def stage(self, conn: AsyncConnection, name: str, version: str) -> str:
        return (await self.port.stage_of(conn, name, version)).value

    async def previous_production(self, conn: AsyncConnection, name: str, version: str) -> str:
        return await self.port.previous_production(conn, name, version)


class KnownStageGate:
    """A registry in another store (embedded ``registry=``): its answer, read beforehand."""

    def __init__(self, stage: str, previous: str = "") -> None:
        self._stage = stage
        self._previous = previous

    async def stage(self, conn: AsyncConnection, name: str, version: str) -> str:
        return self._stage

    async def previous_production(self, conn: AsyncConnection, name: str, version: str) -> str:
        return self._previous


async def check_gate(gate: RegistryGate | None, conn: AsyncConnection, spec: ValidSpec,
                     policy: GatePolicy) -> dict[str, Any]:
    """The gate decision stored on the deployment (``Deployment.gate``).

    Raises NotFound for an unknown version (or stable version) and FailedPrecondition when
    the version's stage does not admit a serving rollout and no override reason is given.
    """
    if gate is None:
        return {"checked": False, "policy": policy.value}
    stage = await gate.stage(conn, spec.name, spec.version)
    if spec.stable_given:
        await gate.stage(conn, spec.name, spec.stable_given)
    allowed = {_PRODUCTION} | ({ModelStage.STAGING.value} if policy is GatePolicy.STAGING
                               else set())
    info: dict[str, Any] = {
        "checked": True, "local": isinstance(gate, LocalRegistryGate), "policy": policy.value,
        "stage": stage, "passed": stage in allowed or spec.strategy is DeploymentStrategy.SHADOW,
    }
    if not info["passed"]:
        if not spec.override:
            raise FailedPrecondition(
                f"{spec.name}:{spec.version} is in stage {stage.upper()}; a "
                f"{spec.strategy.value} deployment needs it approved into "
                f"{' or '.join(sorted(s.upper() for s in allowed))} "
                "(or an override_reason, which is audited)",
                reason="STAGE_GATE",
            )
        info["override_reason"] = spec.override
    return info


class RegistryWriteBack:
    """The registry stage changes a rollout's end implies, when the registry is local."""

    def __init__(self, port: RegistryPort | None) -> None:
        self.port = port

    def _port_for(self, d: Deployment) -> RegistryPort | None:
        """The port, if ``d`` passed a gate of this store's registry and serves traffic."""
        if d.strategy is DeploymentStrategy.SHADOW or not d.gate.get("local"):
            return None
        return self.port

    async def promoted(self, ch: Change, d: Deployment, actor: str) -> dict[str, Any] | None:
        """A completed rollout: the version becomes PRODUCTION (the previous archived)."""
        port = self._port_for(d)
        if port is None:
            return None
        try:
            done = await port.promote_to_production(
                ch, d.model_name, d.model_version, actor, f"deployment {d.deployment_id} promoted")
        except NotFound as exc:  # deleted from the registry meanwhile: serve it anyway, say so
            return {"error": str(exc)}
        return done.to_dict()

    async def rolled_back(self, ch: Change, d: Deployment, actor: str) -> dict[str, Any] | None:
        """After a rollback the registry says what serves again: the rolled-back version
        leaves PRODUCTION (archived) and the stable version it replaced returns to it.

        Only when the new version had reached PRODUCTION (an override of an unapproved
        version changed no stage, so there is nothing to undo) and the stable version is
        the one it replaced there."""
        port = self._port_for(d)
        if port is None or not d.stable_version:
            return None
        try:
            stage = await port.stage_of(ch.conn, d.model_name, d.model_version)
            if stage is not ModelStage.PRODUCTION:
                return None
            previous = await port.previous_production(ch.conn, d.model_name, d.model_version)
            if previous != d.stable_version:  # never approved into PRODUCTION: not ours to put
                return {"registry_stage": "not changed",
                        "why": f"stable version {d.stable_version} is not the PRODUCTION version "
                               f"{d.model_version} replaced ({previous or 'none'})"}
            done = await port.restore_production(
                ch, d.model_name, d.stable_version, d.model_version, actor,
                f"deployment {d.deployment_id} of {d.model_version} rolled back")
        except NotFound as exc:  # the stable version was deleted meanwhile: roll back anyway
            return {"error": str(exc)}
        return done.to_dict()
