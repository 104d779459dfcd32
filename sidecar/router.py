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
from functools import partial

import structlog

from neural.mlops.sidecar.allowlist import KEPT, NOT_MIRRORED, UNROUTED, Refusal, UpstreamPolicy
from neural.mlops.sidecar.layers import Attributes, Plan, Resolution, layers_of
from neural.mlops.sidecar.metrics import Aggregator, ShadowSlot, Slot
from neural.mlops.sidecar.sticky import StickyArms
from neural.mlops.sidecar.wire import model_override
from neural.mlops.v1 import routing_pb2, targeting
from neural.mlops.v1.assignment import Assigner, Strategy, pick
from neural.mlops.v1.targeting import Matcher

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
    routing_pb2.ASSIGNMENT_STRATEGY_BANDIT: Strategy.HASH,  # by current weights, + sticky
}


def _range(r: routing_pb2.ModelRoute) -> tuple[float, float]:
    """An experiment route's [start, end) of its layer (both 0 from an older control
    plane: the whole space); other routes take every request."""
    lo, hi = r.range_start, r.range_end
    if r.kind != routing_pb2.ROUTE_KIND_EXPERIMENT or (lo == 0.0 and hi == 0.0):
        return 0.0, 1.0
    if not 0.0 <= lo < hi <= 1.0:
        raise ValueError(f"range [{lo}, {hi}) is not within [0, 1]")
    return lo, hi


@dataclass(slots=True)
class Variant:
    name: str
    model_name: str
    model_version: str | None  # None = keep the caller's
    upstream: str  # "" = default upstream
    slot: Slot
    override: bytes  # appended to the request to rewrite it (b"" = sent as is)
    tag: str = ""  # "<route id>=<name>", as passed upstream in x-neural-experiment


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
    layer_id: str = ""
    range_start: float = 0.0
    range_end: float = 1.0
    matcher: Matcher | None = None  # None: every request (no targeting)
    steers: bool = False  # some arm rewrites the model name/version or the upstream
    sticky: StickyArms | None = None  # bandit routes: a unit keeps its first arm (sticky.py)

    plain: bool = field(init=False, default=False)  # HASH by the weights alone

    def __post_init__(self) -> None:
        a = self.assigner
        self.plain = a.strategy is Strategy.HASH and not a.forced and self.sticky is None

    @property
    def full(self) -> bool:
        return self.range_start <= 0.0 and self.range_end >= 1.0

    def choose(self, unit_id: str | None, forced: str | None) -> Variant:
        if self.plain and unit_id is not None and forced is None:
            return self.variants[self.assigner.hash_index(unit_id)]  # the common case
        if forced is not None:
            v = self.by_name.get(forced)
            if v is not None:
                return v
        a = self.assigner
        if unit_id is None and a.strategy is Strategy.HASH:
            # No routing key: RANDOM by the same weights (docs/architecture.md).
            return self.variants[pick(random.random(), a.weights)]
        if self.sticky is not None and unit_id is not None and unit_id not in a.forced:
            return self._sticky(self.sticky, unit_id)
        return self.variants[a.choose_index(unit_id)]

    def _sticky(self, sticky: StickyArms, unit_id: str) -> Variant:
        """The arm this sidecar gave the unit before, else the hash by today's weights."""
        name = sticky.get(self.route_id, unit_id)
        v = self.by_name.get(name) if name is not None else None
        if v is None:
            v = self.variants[self.assigner.hash_index(unit_id)]
            sticky.put(self.route_id, unit_id, v.name)
        return v


@dataclass(slots=True)
class Table:
    version: int
    plans: dict[str, Plan]
    refused: tuple[Refusal, ...] = ()

    @property
    def routes(self) -> dict[str, Route]:
        """Each model's first route (its deployment, else its first test), for callers
        that predate layers; :meth:`Router.resolve` is the whole answer."""
        out: dict[str, Route] = {}
        for name, p in self.plans.items():
            first = p.default or next((ly.routes[0] for ly in p.layers if ly.routes), None)
            if first is not None:
                out[name] = first
        return out


class Router:
    """Holds the current :class:`Table` (None until the first one arrives)."""

    def __init__(
        self,
        aggregator: Aggregator,
        on_apply: Callable[[Table], None] | None = None,
        policy: UpstreamPolicy | None = None,
        sticky: StickyArms | None = None,
    ) -> None:
        self.aggregator = aggregator
        self.sticky = sticky if sticky is not None else StickyArms()  # bandit routes' arms
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
        by_model: dict[str, list[routing_pb2.ModelRoute]] = {}
        for r in msg.routes:
            by_model.setdefault(r.model_name, []).append(r)
        previous = self.table.plans if self.table is not None else {}
        plans: dict[str, Plan] = {}
        refused: list[Refusal] = []
        for model_name, rs in by_model.items():
            bad = [(r, v) for r in rs for v in r.variants if not self._allows(v.upstream)]
            if bad:
                kept = previous.get(model_name)
                outcome = KEPT if kept is not None else UNROUTED
                refused += [Refusal(model_name, r.route_id, "variant", v.name, v.upstream,
                                    outcome) for r, v in bad]
                if kept is not None:
                    plans[model_name] = kept  # fail-static for this model
                continue
            refused += [
                Refusal(model_name, r.route_id, "shadow", sh.shadow_id, sh.upstream,
                        NOT_MIRRORED)
                for r in rs for sh in r.shadows if not self._allows(sh.upstream)
            ]
            compiled = [c for c in (self._route(r) for r in rs) if c is not None]
            if compiled:
                plans[model_name] = self._plan(model_name, rs, compiled)
        return Table(version=msg.version, plans=plans, refused=tuple(refused))

    def _route(self, r: routing_pb2.ModelRoute) -> Route | None:
        """One route compiled (None, logged, when it cannot be served)."""
        try:
            if not r.variants:
                raise ValueError("a route needs at least one variant")
            assigner = Assigner(
                r.route_id,
                [(v.name, v.weight) for v in r.variants],
                _STRATEGIES.get(r.strategy, Strategy.HASH),
                forced={f.unit_id: f.variant for f in r.forced_variants},
            )
            matcher = targeting.compile(r.targeting) if r.targeting else None
            lo, hi = _range(r)
        except ValueError as exc:
            log.error("route rejected", model=r.model_name, route_id=r.route_id, error=str(exc))
            return None
        variants = [self._variant(r, v) for v in r.variants]
        return Route(
            model_name=r.model_name,
            route_id=r.route_id,
            kind=_KINDS.get(r.kind, ""),
            assigner=assigner,
            variants=variants,
            by_name={v.name: v for v in variants},
            shadows=[self._shadow(r, sh) for sh in r.shadows if self._allows(sh.upstream)],
            layer_id=r.layer_id or r.route_id,
            range_start=lo,
            range_end=hi,
            matcher=None if matcher is None or matcher.always else matcher,
            steers=any(v.override or v.upstream for v in variants),
            sticky=self.sticky if r.strategy == routing_pb2.ASSIGNMENT_STRATEGY_BANDIT else None,
        )

    def _variant(self, r: routing_pb2.ModelRoute, v: routing_pb2.RouteVariant) -> Variant:
        return Variant(
            name=v.name,
            model_name=v.model_name or r.model_name,
            model_version=v.model_version or None,
            upstream=v.upstream,
            slot=self.aggregator.slot(r.model_name, r.route_id, v.name,
                                      per_unit=r.kind == routing_pb2.ROUTE_KIND_EXPERIMENT),
            override=(
                b""
                if v.model_name in ("", r.model_name) and not v.model_version
                else model_override(v.model_name or r.model_name, v.model_version or None)
            ),
            tag=f"{r.route_id}={v.name}",
        )

    def _shadow(self, r: routing_pb2.ModelRoute, s: routing_pb2.ShadowTarget) -> Shadow:
        return Shadow(
            shadow_id=s.shadow_id,
            model_name=s.model_name or r.model_name,
            model_version=s.model_version or None,
            upstream=s.upstream,
            fraction=max(0.0, min(100.0, s.percentage)) / 100.0,
            slot=self.aggregator.shadow_slot(r.model_name, r.route_id, s.shadow_id),
        )

    def _plan(
        self, model_name: str, raw: list[routing_pb2.ModelRoute], routes: list[Route]
    ) -> Plan:
        """A model's routes as one plan: its deployment (or shadow-only) route, and its
        tests grouped by layer (ASSIGNMENT.md "Layers")."""
        default: Route | None = None
        tests: list[Route] = []
        for r in routes:
            if r.kind == "experiment":
                tests.append(r)
            elif default is None:
                default = r
            else:
                log.warning("duplicate route for model ignored", model=model_name,
                            route_id=r.route_id)
        shadows: dict[str, Shadow] = {}
        for r in routes:
            for sh in r.shadows:
                shadows.setdefault(sh.shadow_id, sh)
        plan = Plan(model_name, default, layers_of(model_name, tests), list(shadows.values()),
                    partial(self.unrouted_slot, model_name))
        kept = {r.route_id: r for r in ([default] if default else [])}
        kept.update({r.route_id: r for ly in plan.layers for r in ly.routes})
        for m in raw:
            got = kept.get(m.route_id)
            if got is None:
                continue
            r = got
            for h in m.header_routes:
                v = r.by_name.get(h.variant)
                if v is None:
                    log.error("header route to an unknown variant ignored", model=model_name,
                              route_id=r.route_id, variant=h.variant)
                    continue
                plan.headers.setdefault(h.header.lower(), {}).setdefault(h.value, (r, v))
            for f in m.forced_variants:
                if r.kind == "experiment":
                    plan.forced_units.setdefault(f.unit_id, []).append(r)
        return plan

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
        log.info("routing table applied", version=table.version, models=len(table.plans))
        if self._on_apply is not None:
            self._on_apply(table)
        return table

    def resolve(
        self,
        model_name: str,
        unit_id: str | None,
        attrs: Attributes | None = None,
        forced: str | None = None,
    ) -> Resolution | None:
        """Where one request for ``model_name`` goes (None: the model has no route; count
        it in :meth:`unrouted_slot` and send it as is). ``unit_id`` is the routing key,
        ``attrs`` the request's attributes for targeting and header routes (None: none
        match), ``forced`` the caller's ``x-neural-variant``. See :mod:`.layers`."""
        t = self.table
        if t is None:
            return None
        plan = t.plans.get(model_name)
        if plan is None:
            return None
        return plan.resolve(unit_id, attrs, forced)

    def route(self, model_name: str) -> Route | None:
        """The model's first route (see :attr:`Table.routes`); prefer :meth:`resolve`."""
        t = self.table
        if t is None:
            return None
        return t.routes.get(model_name)
