"""Deployment manager: shadow, canary, blue-green and direct rollouts with automated rollback.

``DeploymentManager("./deployments")`` opens the embedded store in that folder;
``DeploymentManager("grpc://HOST:PORT")`` talks to a control plane, whose rollout
controller checks every active deployment on its analysis interval and advances,
promotes or rolls it back by itself. Embedded, there is no background controller: call
:meth:`DeploymentManager.check_deployment_health` (or :meth:`run_controller_cycle`).

The registry gate (a serving deployment needs the version approved into PRODUCTION)
applies in the control plane always, and embedded when a ``registry=`` is given.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeAlias

from neural.mlops._remote.deployments import RemoteDeployments
from neural.mlops._runtime import ServiceClient, is_remote
from neural.mlops.server.deployments.gate import KnownStageGate, RegistryGate
from neural.mlops.server.deployments.model import (
    Deployment,
    DeploymentEvent,
    DeploymentStatus,
    DeploymentStrategy,
    HealthCheck,
    MetricDirection,
    MetricKind,
    MetricRule,
    PerformanceMetrics,
    PreviewMode,
    RollbackConfig,
    RolloutPlan,
    ShadowDeployment,
    ShadowStatus,
    Verdict,
)
from neural.mlops.server.deployments.planning import CreateSpec
from neural.mlops.server.deployments.service import DeploymentService
from neural.mlops.server.errors import InvalidArgument

__all__ = [
    "Deployment",
    "DeploymentEvent",
    "DeploymentManager",
    "DeploymentStatus",
    "DeploymentStrategy",
    "HealthCheck",
    "MetricDirection",
    "MetricKind",
    "MetricRule",
    "PerformanceMetrics",
    "PreviewMode",
    "RollbackConfig",
    "RolloutPlan",
    "ShadowDeployment",
    "ShadowStatus",
    "Verdict",
]


def _strategy(value: DeploymentStrategy | str) -> DeploymentStrategy:
    try:
        return DeploymentStrategy(value)
    except ValueError:
        raise InvalidArgument(f"strategy must be one of {[s.value for s in DeploymentStrategy]}",
                              field="strategy") from None


Deployments: TypeAlias = DeploymentService | RemoteDeployments


class DeploymentManager(ServiceClient[Deployments]):
    """The seed's deployment API, embedded or remote."""

    service = "deployments"
    remote = RemoteDeployments

    def __init__(self, location: str | os.PathLike[str] = "./deployments", *,
                 registry: Any = None, token: str | None = None, timeout: float = 60.0) -> None:
        super().__init__(location, token=token, timeout=timeout)
        self.registry = registry

    def _gate(self, name: str, version: str) -> tuple[RegistryGate | None, bool]:
        """``(gate, use_local_gate)``: the store's own registry when it is the one that
        gates (a control plane's always; embedded, when ``registry`` is the same folder),
        else the stage that ``registry`` reports, or no gate without a ``registry``."""
        reg = self.registry
        if self._embedded is None:
            return None, True
        if reg is None:
            return None, False
        if not is_remote(getattr(reg, "location", "")) and (
            Path(reg.location).expanduser().resolve() == self._embedded.path
        ):
            return None, True  # same store: the gate joins the deployment's transaction
        stage = reg.get_model_version(name, version).stage  # NotFound propagates
        previous = ""
        history = getattr(reg, "get_history", None)
        if callable(history):
            for entry in history(name):
                if (entry.kind == "stage" and entry.to_value == "production"
                        and entry.version != version):
                    previous = entry.version
        return KnownStageGate(str(getattr(stage, "value", stage)), previous), False

    # -- shadow ---------------------------------------------------------------

    def shadow_deploy(self, primary_model: str, shadow_model: str,
                      traffic_percentage: float = 100.0, created_by: str = "",
                      upstream: str = "") -> ShadowDeployment:
        """Mirror ``traffic_percentage`` % of the primary's calls (``"name:version"``) to the
        shadow model; the caller never waits for or sees the shadow's answer."""
        gate, local = None, self._embedded is None
        if self.registry is not None:
            for ref in (primary_model, shadow_model):
                name, _, version = str(ref).partition(":")
                if version:
                    gate, local = self._gate(name, version)
        return self._call(lambda s: s.shadow_deploy(
            primary_model, shadow_model, traffic_percentage, created_by, upstream, gate=gate,
            use_local_gate=local), created_by)

    def record_shadow_comparison(self, shadow_id: str, primary_result: Any = None,
                                 shadow_result: Any = None, primary_latency: float | None = None,
                                 shadow_latency: float | None = None,
                                 agreement: bool | None = None, shadow_error: bool = False) -> None:
        """Add one compared pair (latencies in seconds); ``agreement=None`` compares the results."""
        self._call(lambda s: s.record_shadow_comparison(
            shadow_id, primary_result, shadow_result, primary_latency, shadow_latency, agreement,
            shadow_error))

    def compare_shadow_deployment(self, shadow_id: str, min_agreement_rate: float = 0.95,
                                  max_latency_ratio: float = 1.5) -> dict[str, Any]:
        """``agreement_rate``, ``n``, ``primary_latency`` / ``shadow_latency``
        (``mean``/``p50``/``p95``/``p99``, seconds), error rates, ``verdict``, ``reasons``
        and ``disagreement_samples``."""
        return self._call(lambda s: s.compare_shadow_deployment(
            shadow_id, min_agreement_rate, max_latency_ratio)).to_dict()

    def stop_shadow(self, shadow_id: str, stopped_by: str = "") -> ShadowDeployment:
        return self._call(lambda s: s.stop_shadow(shadow_id, stopped_by), stopped_by)

    def get_shadow(self, shadow_id: str) -> ShadowDeployment:
        return self._call(lambda s: s.get_shadow(shadow_id))

    def list_shadows(self, active_only: bool = False) -> list[ShadowDeployment]:
        return self._call(lambda s: s.list_shadows(active_only))

    # -- deployments ----------------------------------------------------------

    def create_deployment(
        self,
        model_name: str,
        model_version: str,
        strategy: DeploymentStrategy | str = DeploymentStrategy.CANARY,
        created_by: str = "",
        baseline_metrics: PerformanceMetrics | None = None,
        rollback_config: RollbackConfig | None = None,
        steps: Sequence[float] | None = None,
        step_duration_seconds: float = 300.0,
        analysis_interval_seconds: float = 60.0,
        preview: PreviewMode | str = PreviewMode.MIRROR,
        mirror_percentage: float = 100.0,
        stable_version: str | None = None,
        upstream: str = "",
        override_reason: str = "",
        switch_back_seconds: float | None = None,
        targeting: Sequence[str] = (),
        header_routes: Sequence[tuple[str, str, str]] = (),
    ) -> Deployment:
        """Start a rollout of ``model_name``/``model_version``.

        CANARY walks ``steps`` (default 5, 10, 25, 50, 100 %), holding each for
        ``step_duration_seconds`` and checking every ``analysis_interval_seconds``;
        BLUE_GREEN previews green (``preview="mirror"`` or ``"header"``), switches at once
        and keeps blue ready for an instant switch-back for ``switch_back_seconds`` (default
        ``step_duration_seconds``) before it completes; DIRECT switches at once
        and bakes; SHADOW only mirrors. ``override_reason`` deploys a version the registry
        has not approved (audited as an override).

        ``targeting``: conditions (``"x-country in [DE, FR]"``, ``"x-app-version >= 4.2"``,
        ``"param.tier = gold"``), ANDed: only matching requests take part in the rollout,
        the others stay on the stable version. ``header_routes``: ``(header, value,
        variant)`` triples, e.g. ``("x-canary", "always", "canary")``: such a request goes
        to that variant whatever the step's weights (Argo's setHeaderRoute). Health rules
        on custom metrics go in ``rollback_config.metric_rules`` (:class:`MetricRule`)."""
        strat = _strategy(strategy)
        spec = CreateSpec(
            model_name=model_name, model_version=model_version, strategy=strat,
            created_by=created_by, baseline_metrics=baseline_metrics or PerformanceMetrics(),
            rollback_config=rollback_config or RollbackConfig(),
            steps=list(steps) if steps is not None else None,
            step_duration_seconds=step_duration_seconds,
            analysis_interval_seconds=analysis_interval_seconds, preview=preview,
            mirror_percentage=mirror_percentage, stable_version=stable_version,
            upstream=upstream, override_reason=override_reason,
            switch_back_seconds=switch_back_seconds, targeting=targeting,
            header_routes=header_routes,
        )
        serves = strat is not DeploymentStrategy.SHADOW
        gate, local = (
            self._gate(model_name, model_version) if serves else (None, self._embedded is None)
        )
        return self._call(lambda s: s.create_deployment(spec, gate=gate, use_local_gate=local),
                          created_by)

    def get_deployment(self, deployment_id: str) -> Deployment:
        return self._call(lambda s: s.get_deployment(deployment_id))

    def get_deployment_status(self, deployment_id: str) -> DeploymentStatus:
        return self.get_deployment(deployment_id).status

    def list_deployments(self, model_name: str = "", active_only: bool = False,
                         limit: int = 100) -> list[Deployment]:
        return self._call(lambda s: s.list_deployments(model_name, active_only, limit))

    def get_events(self, deployment_id: str, after_seq: int = 0) -> list[DeploymentEvent]:
        """The deployment's decision log: every step, check failure, pause and rollback,
        with the values each was based on (``details``)."""
        return self._call(lambda s: s.events(deployment_id, after_seq))

    def watch(self, deployment_id: str, timeout: float | None = None
              ) -> Iterator[tuple[Deployment, list[DeploymentEvent]]]:
        """Yield ``(deployment, new_events)`` now and after every change, until it ends
        (or, with ``timeout``, until that many seconds have passed)."""
        return self._iterate(lambda s: s.watch(deployment_id), timeout=timeout)

    def update_metrics(self, deployment_id: str, metrics: PerformanceMetrics) -> Deployment:
        """Report the new version's current metrics (the manual form of health input)."""
        return self._call(lambda s: s.update_metrics(deployment_id, metrics))

    def check_deployment_health(self, deployment_id: str, request_count: int | None = None,
                                actor: str = "") -> tuple[bool, list[str]]:
        """Judge the deployment now; roll it back if it fails. Returns ``(needs_rollback,
        reasons)``. With ``request_count`` (or after :meth:`update_metrics`) the reported
        metrics are judged, else the live metrics of the current step."""
        needs, reasons, _ = self._call(
            lambda s: s.check_deployment_health(deployment_id, request_count, actor), actor or None)
        return needs, reasons

    def _operate(self, op: Callable[[Deployments, str], Awaitable[Deployment]],
                 actor: str) -> Deployment:
        """An operator action, done as ``actor`` (or as the caller when that is empty)."""
        who = actor or self._unnamed_actor
        return self._call(lambda s: op(s, who), actor or None)

    def promote(self, deployment_id: str, actor: str = "", reason: str = "",
                full: bool = False) -> Deployment:
        """Advance one step now; ``full=True`` completes at once (100 %, registry PRODUCTION)."""
        return self._operate(lambda s, who: s.promote(deployment_id, who, reason, full), actor)

    def pause(self, deployment_id: str, actor: str = "", reason: str = "") -> Deployment:
        return self._operate(lambda s, who: s.pause(deployment_id, who, reason), actor)

    def resume(self, deployment_id: str, actor: str = "", reason: str = "") -> Deployment:
        return self._operate(lambda s, who: s.resume(deployment_id, who, reason), actor)

    def abort(self, deployment_id: str, actor: str = "", reason: str = "") -> Deployment:
        return self._operate(lambda s, who: s.abort(deployment_id, who, reason), actor)

    def rollback(self, deployment_id: str, actor: str = "", reason: str = "") -> Deployment:
        """Route all traffic back to the stable version now (status ROLLED_BACK)."""
        return self._operate(lambda s, who: s.rollback(deployment_id, who, reason), actor)

    def run_controller_cycle(self) -> dict[str, int]:
        """Embedded only: one rollout-controller cycle over the due deployments."""
        return self._call(lambda s: s.reconcile())
