"""The sidecar's routing table: model name -> route -> variant, applied atomically.

A table from the control plane is compiled once into plain objects (the assignment
thresholds, the rewritten model name/version bytes, the metric slots, the upstream
channel), then swapped in with one assignment, so a request sees either the old or the
new table, never a mix.

Upstreams are checked against the sidecar's own :class:`UpstreamPolicy` while compiling:
a route with a refused variant keeps the previous table's route for its model (or stays
unrouted), a refused shadow is left out; each refusal is logged once per table version,
counted, and listed on the table (``/healthz``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from neural.mlops.sidecar.allowlist import KEPT, NOT_MIRRORED, UNROUTED, Refusal, UpstreamPolicy
from neural.mlops.sidecar.metrics import Aggregator, ShadowSlot, Slot
from neural.mlops.sidecar.wire import model_override
from neural.mlops.v1 import routing_pb2
from neural.mlops.v1.assignment import Assigner, Strategy, pick

log = structlog.get_logger(__name__)

# The route's kind as the sidecar's logs and metrics name it.
_KINDS = {
    routing_pb2.ROUTE_KIND_EXPERIMENT: "experiment",
    routing_pb2.ROUTE_KIND_DEPLOYMENT: "deployment",
    routing_pb2.ROUTE_KIND_SHADOW: "shadow",
}
_STRATEGIES = {
    routing_pb2.ASSIGNMENT_STRATEGY_UNSPECIFIED: Strategy.HASH,
    routing_pb2.ASSIGNMENT_STRATEGY_HASH: Strategy.HASH,
    routing_pb2.ASSIGNMENT_STRATEGY_RANDOM: Strategy.RANDOM,
    routing_pb2.ASSIGNMENT_STRATEGY_ROUND_ROBIN: Strategy.ROUND_ROBIN,
}


@dataclass(slots=True)
class Variant:
    name: str
    model_name: str
    model_version: str | None  # None = keep the caller's
    upstream: str  # "" = default upstream
    slot: Slot
    override: bytes  # appended to the request to rewrite it (b"" = sent as is)


@dataclass(slots=True)
class Shadow:
    shadow_id: str
    model_name: str
    model_version: str | None
    upstream: str
    fraction: float
    slot: ShadowSlot


@dataclass(slots=True)
class Route:
    model_name: str
    route_id: str
    kind: str
    assigner: Assigner
    variants: list[Variant]
    by_name: dict[str, Variant]
    shadows: list[Shadow] = field(default_factory=list)

    def choose(self, unit_id: str | None, forced: str | None) -> Variant:
        if forced is not None:
            v = self.by_name.get(forced)
            if v is not None:
                return v
        a = self.assigner
        if unit_id is None and a.strategy is Strategy.HASH:
            # No routing key: RANDOM by the same weights (docs/architecture.md).
            return self.variants[pick(random.random(), a.weights)]
        return self.variants[a.choose_index(unit_id)]


@dataclass(slots=True)
class Table:
    version: int
    routes: dict[str, Route]
    refused: tuple[Refusal, ...] = ()


class Router:
    """Holds the current :class:`Table` (None until the first one arrives)."""

    def __init__(
        self,
        aggregator: Aggregator,
        on_apply: Callable[[Table], None] | None = None,
        policy: UpstreamPolicy | None = None,
    ) -> None:
        self.aggregator = aggregator
        self.table: Table | None = None
        self._on_apply = on_apply
        self._unrouted: dict[str, Slot] = {}
        self.policy = policy  # None: every upstream (a Router built outside a sidecar)
        # Tables in which each (model, route, kind, name) was refused, for Prometheus.
        self.refused_total: dict[tuple[str, str, str, str], int] = {}

    def _allows(self, upstream: str) -> bool:
        return self.policy is None or self.policy.allows(upstream)

    @property
    def version(self) -> int:
        return self.table.version if self.table is not None else 0

    def unrouted_slot(self, model_name: str) -> Slot:
        s = self._unrouted.get(model_name)
        if s is None:
            if len(self._unrouted) > 10_000:  # callers control model names; stay bounded
                model_name = "_other"
                s = self._unrouted.get(model_name)
                if s is not None:
                    return s
            s = self._unrouted[model_name] = self.aggregator.slot(model_name, "", "")
        return s

    def compile(self, msg: routing_pb2.RoutingTable) -> Table:
        routes: dict[str, Route] = {}
        refused: list[Refusal] = []
        previous = self.table.routes if self.table is not None else {}
        agg = self.aggregator
        for r in msg.routes:
            if r.model_name in routes:
                log.warning(
                    "duplicate route for model ignored", model=r.model_name, route_id=r.route_id
                )
                continue
            bad = [v for v in r.variants if not self._allows(v.upstream)]
            if bad:
                kept = previous.get(r.model_name)
                outcome = KEPT if kept is not None else UNROUTED
                refused += [
                    Refusal(r.model_name, r.route_id, "variant", v.name, v.upstream, outcome)
                    for v in bad
                ]
                if kept is not None:
                    routes[r.model_name] = kept  # fail-static for this model
                continue
            refused += [
                Refusal(r.model_name, r.route_id, "shadow", s.shadow_id, s.upstream, NOT_MIRRORED)
                for s in r.shadows
                if not self._allows(s.upstream)
            ]
            try:
                if not r.variants:
                    raise ValueError("a route needs at least one variant")
                assigner = Assigner(
                    r.route_id,
                    [(v.name, v.weight) for v in r.variants],
                    _STRATEGIES.get(r.strategy, Strategy.HASH),
                    forced={f.unit_id: f.variant for f in r.forced_variants},
                )
            except ValueError as exc:
                log.error("route rejected", model=r.model_name, route_id=r.route_id, error=str(exc))
                continue
            variants = [
                Variant(
                    name=v.name,
                    model_name=v.model_name or r.model_name,
                    model_version=v.model_version or None,
                    upstream=v.upstream,
                    slot=agg.slot(r.model_name, r.route_id, v.name,
                                  per_unit=r.kind == routing_pb2.ROUTE_KIND_EXPERIMENT),
                    override=(
                        b""
                        if v.model_name in ("", r.model_name) and not v.model_version
                        else model_override(v.model_name or r.model_name, v.model_version or None)
                    ),
                )
                for v in r.variants
            ]
            shadows = [
                Shadow(
                    shadow_id=s.shadow_id,
                    model_name=s.model_name or r.model_name,
                    model_version=s.model_version or None,
                    upstream=s.upstream,
                    fraction=max(0.0, min(100.0, s.percentage)) / 100.0,
                    slot=agg.shadow_slot(r.model_name, r.route_id, s.shadow_id),
                )
                for s in r.shadows
                if self._allows(s.upstream)
            ]
            routes[r.model_name] = Route(
                model_name=r.model_name,
                route_id=r.route_id,
                kind=_KINDS.get(r.kind, ""),
                assigner=assigner,
                variants=variants,
                by_name={v.name: v for v in variants},
                shadows=shadows,
            )
        return Table(version=msg.version, routes=routes, refused=tuple(refused))

    def apply(self, msg: routing_pb2.RoutingTable) -> Table:
        table = self.compile(msg)
        self.table = table  # the atomic swap
        for f in table.refused:
            self.refused_total[f.key] = self.refused_total.get(f.key, 0) + 1
            log.error(
                "upstream not allowed (--allowed-upstream); not sent there",
                version=table.version,
                model=f.model,
                route_id=f.route_id,
                kind=f.kind,
                name=f.name,
                upstream=f.upstream[:120],
                outcome=f.outcome,
            )
        log.info("routing table applied", version=table.version, routes=len(table.routes))
        if self._on_apply is not None:
            self._on_apply(table)
        return table

    def route(self, model_name: str) -> Route | None:
        t = self.table
        if t is None:
            return None
        return t.routes.get(model_name)
