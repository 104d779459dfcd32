"""Routing-table entries, produced by the domains that steer traffic.

Experiments (A/B tests) and deployments (canary, blue-green, shadow) each implement
:class:`RouteProvider`; the routing service compiles their answers into one versioned
table and pushes it to every sidecar whenever a change commits (a domain signals that by
``change.on_commit(routing.invalidate)``).

A route applies to ModelInfer calls whose ``model_name`` equals ``model_name``. Variants
are assigned by the contract's hash (:mod:`neural.mlops.v1.assignment`) with
``route_id`` as the salt, cumulative ``weight`` in declared order. A model may have one
deployment route and one route per running A/B test; an A/B test's route only takes the
units whose layer bucket falls in its range (``layer_id``, ``range_start``, ``range_end``)
and whose request matches its ``targeting``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True, slots=True)
class RouteVariant:
    name: str  # "control" / "treatment" / "stable" / "canary" / a variant name
    weight: float  # fraction of traffic in [0, 1]; a route's weights sum to 1
    model_name: str  # what the upstream is asked for (ModelInfer.model_name rewrite)
    model_version: str = ""  # ModelInfer.model_version rewrite; "" = leave the caller's
    upstream: str = ""  # HOST:PORT of another model server; "" = the sidecar's --upstream


@dataclass(frozen=True, slots=True)
class ShadowTarget:
    shadow_id: str
    model_name: str
    model_version: str = ""
    upstream: str = ""
    percentage: float = 100.0  # of the primary's ModelInfer calls, in [0, 100]


@dataclass(frozen=True, slots=True)
class ModelRoute:
    model_name: str
    route_id: str  # experiment test_id or deployment_id; also the assignment salt
    kind: str  # "experiment" | "deployment" | "shadow"
    strategy: str = "hash"  # "hash" | "random" | "round_robin"
    variants: tuple[RouteVariant, ...] = ()
    shadows: tuple[ShadowTarget, ...] = field(default=())
    forced_variants: tuple[tuple[str, str], ...] = ()  # (unit_id, variant) QA overrides
    # The version a completed deployment left serving: the weakest claim on a model (an
    # experiment or a new rollout on the same model takes its place). Not on the wire.
    pinned: bool = False
    # Experiment routes: the test's layer (the salt of the layer bucket) and its share of
    # the layer's hash space, [range_start, range_end) in [0, 1] (ASSIGNMENT.md "Layers").
    layer_id: str = ""
    range_start: float = 0.0
    range_end: float = 1.0
    # Canonical condition texts (neural.mlops.v1.targeting), ANDed; () = every request.
    targeting: tuple[str, ...] = ()
    # (header, value, variant): a request whose header equals value goes to that variant.
    header_routes: tuple[tuple[str, str, str], ...] = ()


class RouteProvider(Protocol):
    async def active_routes(self, conn: AsyncConnection) -> list[ModelRoute]:
        """Routes this domain wants applied now, read inside the given transaction."""
        ...
