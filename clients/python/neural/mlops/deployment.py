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

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from neural.mlops._runtime import ServiceClient, is_remote
from neural.mlops.server.deployments import convert as c
from neural.mlops.server.deployments.model import (
    Deployment,
    DeploymentEvent,
    DeploymentStatus,
    DeploymentStrategy,
    HealthCheck,
    PerformanceMetrics,
    PreviewMode,
    RollbackConfig,
    RolloutPlan,
    ShadowDeployment,
    ShadowStatus,
    Verdict,
)
from neural.mlops.server.deployments.service import CreateSpec, KnownStageGate, RegistryGate
from neural.mlops.server.errors import InvalidArgument, Unavailable
from neural.mlops.v1 import deployments_pb2 as pb
from neural.mlops.v1.deployments_pb2_grpc import DeploymentServiceStub

__all__ = [
    "Deployment",
    "DeploymentEvent",
    "DeploymentManager",
    "DeploymentStatus",
    "DeploymentStrategy",
    "HealthCheck",
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


class DeploymentManager(ServiceClient):
    """The seed's deployment API, embedded or remote."""

    service = "deployments"
    stub_class = DeploymentServiceStub

    def __init__(self, location: str | os.PathLike[str] = "./deployments", *, registry: Any = None,
                 token: str | None = None, timeout: float = 60.0) -> None:
        super().__init__(location, token=token, timeout=timeout)
        self.registry = registry

    def _gate(self, name: str, version: str) -> tuple[RegistryGate | None, bool]:
        """(gate, use_local_gate) for an embedded call."""
        reg = self.registry
        if reg is None:
            return None, False
        if not is_remote(getattr(reg, "location", "")) and self._embedded is not None and (
            Path(reg.location).expanduser().resolve() == self._embedded.path
        ):
            return None, True  # same store: the gate joins the deployment's transaction
        stage = reg.get_model_version(name, version).stage  # NotFound propagates
        previous = ""
        history = getattr(reg, "get_history", None)
        if callable(history):
            for entry in history(name):
                if entry.kind == "stage" and entry.to_value == "production" and entry.version != version:
                    previous = entry.version
        return KnownStageGate(str(getattr(stage, "value", stage)), previous), False

    # -- shadow ---------------------------------------------------------------

    def shadow_deploy(self, primary_model: str, shadow_model: str, traffic_percentage: float = 100.0,
                      created_by: str = "", upstream: str = "") -> ShadowDeployment:
        """Mirror ``traffic_percentage`` % of the primary's calls (``"name:version"``) to the
        shadow model; the caller never waits for or sees the shadow's answer."""
        if self._remote is not None:
            req = pb.ShadowDeployRequest(primary_model=primary_model, shadow_model=shadow_model,
                                         traffic_percentage=traffic_percentage, created_by=created_by,
                                         upstream=upstream)
            return c.shadow_from_pb(self._rpc("ShadowDeploy", req, created_by))
        gate, local = None, False
        if self.registry is not None:
            for ref in (primary_model, shadow_model):
                name, _, version = str(ref).partition(":")
                if version:
                    gate, local = self._gate(name, version)
        return self._local(lambda s: s.shadow_deploy(primary_model, shadow_model, traffic_percentage, created_by,
                                                     upstream, gate=gate, use_local_gate=local), created_by)

    def record_shadow_comparison(self, shadow_id: str, primary_result: Any = None, shadow_result: Any = None,
                                 primary_latency: float | None = None, shadow_latency: float | None = None,
                                 agreement: bool | None = None, shadow_error: bool = False) -> None:
        """Add one compared pair (latencies in seconds); ``agreement=None`` compares the results."""
        if self._remote is not None:
            try:
                p_json = json.dumps(primary_result, allow_nan=False, default=str)
                s_json = json.dumps(shadow_result, allow_nan=False, default=str)
            except ValueError:
                raise InvalidArgument("results must be JSON-serialisable", field="primary_result") from None
            req = pb.RecordShadowComparisonRequest(shadow_id=shadow_id, primary_result_json=p_json,
                                                   shadow_result_json=s_json, shadow_error=shadow_error)
            if primary_latency is not None:
                req.primary_latency = primary_latency
            if shadow_latency is not None:
                req.shadow_latency = shadow_latency
            if agreement is not None:
                req.agreement = agreement
            self._rpc("RecordShadowComparison", req)
            return
        self._local(lambda s: s.record_shadow_comparison(shadow_id, primary_result, shadow_result, primary_latency,
                                                         shadow_latency, agreement, shadow_error))

    def compare_shadow_deployment(self, shadow_id: str, min_agreement_rate: float = 0.95,
                                  max_latency_ratio: float = 1.5) -> dict[str, Any]:
        """``agreement_rate``, ``n``, ``primary_latency`` / ``shadow_latency``
        (``mean``/``p50``/``p95``/``p99``, seconds), error rates, ``verdict``, ``reasons``
        and ``disagreement_samples``."""
        if self._remote is not None:
            req = pb.CompareShadowRequest(shadow_id=shadow_id, min_agreement_rate=min_agreement_rate,
                                          max_latency_ratio=max_latency_ratio)
            return json.loads(self._rpc("CompareShadow", req).result_json)  # type: ignore[no-any-return]
        return self._local(lambda s: s.compare_shadow_deployment(shadow_id, min_agreement_rate,  # type: ignore[no-any-return]
                                                                 max_latency_ratio))

    def stop_shadow(self, shadow_id: str, stopped_by: str = "") -> ShadowDeployment:
        if self._remote is not None:
            return c.shadow_from_pb(self._rpc("StopShadow", pb.StopShadowRequest(shadow_id=shadow_id,
                                                                                 stopped_by=stopped_by), stopped_by))
        return self._local(lambda s: s.stop_shadow(shadow_id, stopped_by), stopped_by)  # type: ignore[no-any-return]

    def get_shadow(self, shadow_id: str) -> ShadowDeployment:
        if self._remote is not None:
            return c.shadow_from_pb(self._rpc("GetShadow", pb.GetShadowRequest(shadow_id=shadow_id)))
        return self._local(lambda s: s.get_shadow(shadow_id))  # type: ignore[no-any-return]

    def list_shadows(self, active_only: bool = False) -> list[ShadowDeployment]:
        if self._remote is not None:
            resp = self._rpc("ListShadows", pb.ListShadowsRequest(active_only=active_only))
            return [c.shadow_from_pb(s) for s in resp.shadows]
        return self._local(lambda s: s.list_shadows(active_only))  # type: ignore[no-any-return]

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
    ) -> Deployment:
        """Start a rollout of ``model_name``/``model_version``.

        CANARY walks ``steps`` (default 5, 10, 25, 50, 100 %), holding each for
        ``step_duration_seconds`` and checking every ``analysis_interval_seconds``;
        BLUE_GREEN previews green (``preview="mirror"`` or ``"header"``), switches at once
        and keeps blue ready for an instant switch-back for ``switch_back_seconds`` (default
        ``step_duration_seconds``) before it completes; DIRECT switches at once
        and bakes; SHADOW only mirrors. ``override_reason`` deploys a version the registry
        has not approved (audited as an override)."""
        strat = _strategy(strategy)
        spec = CreateSpec(
            model_name=model_name, model_version=model_version, strategy=strat, created_by=created_by,
            baseline_metrics=baseline_metrics or PerformanceMetrics(),
            rollback_config=rollback_config or RollbackConfig(),
            steps=list(steps) if steps is not None else None, step_duration_seconds=step_duration_seconds,
            analysis_interval_seconds=analysis_interval_seconds, preview=preview,
            mirror_percentage=mirror_percentage, stable_version=stable_version, upstream=upstream,
            override_reason=override_reason, switch_back_seconds=switch_back_seconds,
        )
        if self._remote is not None:
            if not isinstance(spec.baseline_metrics, PerformanceMetrics):
                raise InvalidArgument("baseline_metrics must be PerformanceMetrics", field="baseline_metrics")
            if not isinstance(spec.rollback_config, RollbackConfig):
                raise InvalidArgument("rollback_config must be RollbackConfig", field="rollback_config")
            req = pb.CreateDeploymentRequest(
                model_name=model_name, model_version=model_version, strategy=c.STRATEGY_TO_PB[strat],
                created_by=created_by, baseline_metrics=c.metrics_to_pb(spec.baseline_metrics),
                rollback_config=c.rollback_to_pb(spec.rollback_config), steps=spec.steps or [],
                step_duration_seconds=step_duration_seconds, analysis_interval_seconds=analysis_interval_seconds,
                preview=str(getattr(preview, "value", preview)), mirror_percentage=mirror_percentage,
                stable_version=stable_version or "", upstream=upstream, override_reason=override_reason,
            )
            if switch_back_seconds is not None:
                req.switch_back_seconds = switch_back_seconds
            return c.deployment_from_pb(self._rpc("CreateDeployment", req, created_by))
        gate, local = self._gate(model_name, model_version) if strat is not DeploymentStrategy.SHADOW else (None, False)
        return self._local(lambda s: s.create_deployment(spec, gate=gate, use_local_gate=local),  # type: ignore[no-any-return]
                           created_by)

    def get_deployment(self, deployment_id: str) -> Deployment:
        if self._remote is not None:
            return c.deployment_from_pb(self._rpc("GetDeployment", pb.GetDeploymentRequest(deployment_id=deployment_id)))
        return self._local(lambda s: s.get_deployment(deployment_id))  # type: ignore[no-any-return]

    def get_deployment_status(self, deployment_id: str) -> DeploymentStatus:
        return self.get_deployment(deployment_id).status

    def list_deployments(self, model_name: str = "", active_only: bool = False, limit: int = 100) -> list[Deployment]:
        if self._remote is not None:
            resp = self._rpc("ListDeployments", pb.ListDeploymentsRequest(model_name=model_name,
                                                                          active_only=active_only, limit=limit))
            return [c.deployment_from_pb(d) for d in resp.deployments]
        return self._local(lambda s: s.list_deployments(model_name, active_only, limit))  # type: ignore[no-any-return]

    def get_events(self, deployment_id: str, after_seq: int = 0) -> list[DeploymentEvent]:
        """The deployment's decision log: every step, check failure, pause and rollback,
        with the values each was based on (``details``)."""
        if self._remote is not None:
            resp = self._rpc("ListDeploymentEvents", pb.ListDeploymentEventsRequest(deployment_id=deployment_id,
                                                                                    after_seq=after_seq))
            return [c.event_from_pb(e) for e in resp.events]
        return self._local(lambda s: s.events(deployment_id, after_seq))  # type: ignore[no-any-return]

    def watch(self, deployment_id: str, timeout: float | None = None) -> Iterator[tuple[Deployment, list[DeploymentEvent]]]:
        """Yield ``(deployment, new_events)`` now and after every change, until it ends."""
        import time

        if self._remote is not None:
            started = time.monotonic()
            stream = self._remote.stream(self._stub.WatchDeployment,
                                         pb.WatchDeploymentRequest(deployment_id=deployment_id), timeout=timeout)
            try:
                for update in stream:
                    yield c.deployment_from_pb(update.deployment), [c.event_from_pb(e) for e in update.events]
            except Unavailable:
                if timeout is None or time.monotonic() - started < timeout * 0.9:
                    raise  # a real outage, not the watch's own deadline
            return

        seq, revision = 0, -1
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            dep = self.get_deployment(deployment_id)
            events = self.get_events(deployment_id, seq)
            if events or dep.revision != revision:
                seq = events[-1].seq if events else seq
                revision = dep.revision
                yield dep, events
            if not dep.active or (deadline is not None and time.monotonic() > deadline):
                return
            time.sleep(0.5)

    def update_metrics(self, deployment_id: str, metrics: PerformanceMetrics) -> Deployment:
        """Report the new version's current metrics (the manual form of health input)."""
        if self._remote is not None:
            if not isinstance(metrics, PerformanceMetrics):
                raise InvalidArgument("metrics must be PerformanceMetrics", field="metrics")
            req = pb.UpdateMetricsRequest(deployment_id=deployment_id, metrics=c.metrics_to_pb(metrics))
            return c.deployment_from_pb(self._rpc("UpdateMetrics", req))
        return self._local(lambda s: s.update_metrics(deployment_id, metrics))  # type: ignore[no-any-return]

    def check_deployment_health(self, deployment_id: str, request_count: int | None = None,
                                actor: str = "") -> tuple[bool, list[str]]:
        """Judge the deployment now; roll it back if it fails. Returns ``(needs_rollback,
        reasons)``. With ``request_count`` (or after :meth:`update_metrics`) the reported
        metrics are judged, else the live metrics of the current step."""
        if self._remote is not None:
            req = pb.CheckHealthRequest(deployment_id=deployment_id, actor=actor)
            if request_count is not None:
                if isinstance(request_count, bool) or not isinstance(request_count, int):
                    raise InvalidArgument("request_count must be an integer", field="request_count")
                if request_count < 0:
                    raise InvalidArgument("request_count must be >= 0", field="request_count")
                req.request_count = request_count
            resp = self._rpc("CheckHealth", req, actor or None)
            return resp.needs_rollback, list(resp.reasons)
        needs, reasons, _ = self._local(lambda s: s.check_deployment_health(deployment_id, request_count, actor),
                                        actor or None)
        return needs, reasons

    def _action(self, method: str, deployment_id: str, actor: str, reason: str, full: bool = False) -> Deployment:
        if self._remote is not None:
            req = pb.DeploymentActionRequest(deployment_id=deployment_id, actor=actor, reason=reason, full=full)
            return c.deployment_from_pb(self._rpc(method.capitalize(), req, actor or None))
        who = actor or "anonymous"
        if method == "promote":
            return self._local(lambda s: s.promote(deployment_id, who, reason, full), who)  # type: ignore[no-any-return]
        return self._local(lambda s: getattr(s, method)(deployment_id, who, reason), who)  # type: ignore[no-any-return]

    def promote(self, deployment_id: str, actor: str = "", reason: str = "", full: bool = False) -> Deployment:
        """Advance one step now; ``full=True`` completes at once (100 %, registry PRODUCTION)."""
        return self._action("promote", deployment_id, actor, reason, full)

    def pause(self, deployment_id: str, actor: str = "", reason: str = "") -> Deployment:
        return self._action("pause", deployment_id, actor, reason)

    def resume(self, deployment_id: str, actor: str = "", reason: str = "") -> Deployment:
        return self._action("resume", deployment_id, actor, reason)

    def abort(self, deployment_id: str, actor: str = "", reason: str = "") -> Deployment:
        return self._action("abort", deployment_id, actor, reason)

    def rollback(self, deployment_id: str, actor: str = "", reason: str = "") -> Deployment:
        """Route all traffic back to the stable version now (status ROLLED_BACK)."""
        return self._action("rollback", deployment_id, actor, reason)

    def run_controller_cycle(self) -> dict[str, int]:
        """Embedded only: one rollout-controller cycle over the due deployments."""
        if self._remote is not None:
            raise InvalidArgument("the control plane runs its own controller", field="location")
        return self._local(lambda s: s.reconcile())  # type: ignore[no-any-return]
