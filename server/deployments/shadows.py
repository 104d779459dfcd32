"""Shadow deployments: a copy of a model's calls mirrored to another version.

The caller never waits for or sees the shadow's answer; the sidecars compare the two and
feed the shadow's statistics (:func:`traffic.apply_shadow`), the same store that
:meth:`ShadowDeployments.record_comparison` (the seed's manual form) adds to.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from neural.mlops.server import traffic
from neural.mlops.server import validation as v
from neural.mlops.server.audit.events import EventType
from neural.mlops.server.clock import Clock, from_us, to_us
from neural.mlops.server.deployments import store
from neural.mlops.server.deployments.comparison import ShadowComparison, ShadowLimits, compare
from neural.mlops.server.deployments.gate import RegistryGate
from neural.mlops.server.deployments.model import ShadowDeployment, ShadowStatus
from neural.mlops.server.deployments.planning import non_negative, parse_ref
from neural.mlops.server.deployments.signals import Signals
from neural.mlops.server.deployments.upstreams import check_upstream
from neural.mlops.server.errors import FailedPrecondition, InvalidArgument
from neural.mlops.server.storage import Database
from neural.mlops.v1.traffic import ShadowStats
from neural.mlops.v1.upstream import UpstreamAllowList

RESULTS_LIMIT = 64 * 1024  # bytes of JSON for one manually recorded pair


class ShadowDeployments:
    def __init__(self, db: Database, clock: Clock, signals: Signals,
                 allowed_upstreams: UpstreamAllowList | None = None) -> None:
        self.db = db
        self.clock = clock
        self.signals = signals
        self.allowed_upstreams = allowed_upstreams or UpstreamAllowList()

    def _now_us(self) -> int:
        return to_us(self.clock.now())

    async def deploy(self, primary_model: str, shadow_model: str, traffic_percentage: float,
                     created_by: str, upstream: str, gate: RegistryGate | None) -> ShadowDeployment:
        """Mirror ``traffic_percentage`` % of ``primary_model``'s calls to ``shadow_model``;
        with a ``gate``, both versions (where given) must exist in the registry."""
        parse_ref(primary_model, "primary_model")
        sname, sversion = parse_ref(shadow_model, "shadow_model")
        shadow = ShadowDeployment(
            shadow_id=f"shadow-{uuid.uuid4().hex[:16]}", primary_model=primary_model,
            shadow_model=f"{sname}:{sversion}" if sversion else sname,
            traffic_percentage=v.percentage(traffic_percentage, "traffic_percentage"),
            status=ShadowStatus.ACTIVE,
            created_by=v.actor(created_by or "anonymous", "created_by"),
            created_at=from_us(self._now_us()),
            upstream=check_upstream(upstream, "upstream", self.allowed_upstreams),
        )
        async with self.db.change() as ch:
            if gate is not None:
                for ref in (primary_model, shadow_model):
                    name, _, version = ref.partition(":")
                    if version:
                        await gate.stage(ch.conn, name, version)  # NotFound if unknown
            await store.insert_shadow(ch.conn, shadow)
            ch.record(EventType.SHADOW_STARTED, resource_type="shadow",
                      resource_id=shadow.shadow_id, action="start", actor=shadow.created_by,
                      details={"primary_model": primary_model, "shadow_model": shadow_model,
                               "traffic_percentage": shadow.traffic_percentage,
                               "upstream": shadow.upstream})
            self.signals.committed(ch)
            return await store.load_shadow(ch.conn, shadow.shadow_id)

    async def get(self, shadow_id: str) -> ShadowDeployment:
        async with self.db.read() as conn:
            return await store.load_shadow(conn, shadow_id)

    async def list(self, active_only: bool = False) -> list[ShadowDeployment]:
        async with self.db.read() as conn:
            return await store.list_shadows(conn, active_only)

    async def record_comparison(self, shadow_id: str, primary_result: Any, shadow_result: Any,
                                primary_latency: float | None, shadow_latency: float | None,
                                agreement: bool | None, shadow_error: bool) -> None:
        """Add one compared pair; ``agreement=None`` compares the results' JSON."""
        for value, fname in ((primary_latency, "primary_latency"),
                             (shadow_latency, "shadow_latency")):
            if value is not None:
                non_negative(value, fname)
        try:
            p_json = json.loads(json.dumps(primary_result, allow_nan=False, default=str))
            s_json = json.loads(json.dumps(shadow_result, allow_nan=False, default=str))
        except ValueError:
            raise InvalidArgument("results must be JSON-serialisable",
                                  field="primary_result") from None
        if len(json.dumps(p_json)) + len(json.dumps(s_json)) > RESULTS_LIMIT:
            raise InvalidArgument("results are larger than 64 KiB", field="primary_result")
        agreed = (p_json == s_json) if agreement is None else bool(agreement)
        now = self._now_us()
        stats = ShadowStats()
        stats.observe(agreed=agreed, primary_latency=primary_latency,
                      shadow_latency=shadow_latency, shadow_error=bool(shadow_error),
                      sample={"at_us": now, "primary": p_json, "shadow": s_json,
                              "source": "manual"})
        async with self.db.change(audited=False) as ch:
            await store.load_shadow(ch.conn, shadow_id)
            await traffic.apply_shadow(ch.conn, shadow_id, traffic.window_start(now), stats,
                                       now_us=now)

    async def compare(self, shadow_id: str, min_agreement_rate: float,
                      max_latency_ratio: float) -> ShadowComparison:
        limits = ShadowLimits(v.fraction(min_agreement_rate, "min_agreement_rate"),
                              non_negative(max_latency_ratio, "max_latency_ratio"))
        async with self.db.read() as conn:
            shadow = await store.load_shadow(conn, shadow_id)
            ss = await traffic.shadow_totals(conn, shadow_id)
            primary = (await traffic.totals(conn, shadow_id)).get("primary")
        return compare(ss, primary, limits, shadow_id=shadow_id,
                       primary_model=shadow.primary_model, shadow_model=shadow.shadow_model,
                       status=shadow.status.value)

    async def stop(self, shadow_id: str, stopped_by: str) -> ShadowDeployment:
        actor = v.actor(stopped_by or "anonymous", "stopped_by")
        async with self.db.change() as ch:
            shadow = await store.load_shadow(ch.conn, shadow_id)
            if shadow.status is ShadowStatus.STOPPED:
                raise FailedPrecondition(f"shadow deployment {shadow_id} is already stopped")
            await store.stop_shadow(ch.conn, shadow_id, self._now_us())
            ch.record(EventType.SHADOW_STOPPED, resource_type="shadow", resource_id=shadow_id,
                      action="stop", actor=actor,
                      details={"primary_model": shadow.primary_model,
                               "shadow_model": shadow.shadow_model})
            self.signals.committed(ch)
            return await store.load_shadow(ch.conn, shadow_id)
