"""Routing domain <-> protobuf (shared by the servicer and any remote client)."""

from __future__ import annotations

from neural.mlops.server.routing.ingest import units_from_arrays
from neural.mlops.server.routing.model import ModelRoute
from neural.mlops.server.routing.service import (
    MetricsBatch,
    RoutingTable,
    ShadowWindow,
    VariantWindow,
)
from neural.mlops.v1 import routing_pb2 as pb
from neural.mlops.v1 import targeting, targeting_pb2
from neural.mlops.v1.traffic import LatencyHistogram, Moments, ShadowStats, VariantStats

_STRATEGY = {
    "hash": pb.ASSIGNMENT_STRATEGY_HASH,
    "random": pb.ASSIGNMENT_STRATEGY_RANDOM,
    "round_robin": pb.ASSIGNMENT_STRATEGY_ROUND_ROBIN,
    "bandit": pb.ASSIGNMENT_STRATEGY_BANDIT,
}


KIND_TO_PB = {
    "experiment": pb.ROUTE_KIND_EXPERIMENT,
    "deployment": pb.ROUTE_KIND_DEPLOYMENT,
    "shadow": pb.ROUTE_KIND_SHADOW,
}
KIND_FROM_PB: dict[int, str] = {int(v): k for k, v in KIND_TO_PB.items()}


def route_to_pb(r: ModelRoute) -> pb.ModelRoute:
    return pb.ModelRoute(
        model_name=r.model_name,
        route_id=r.route_id,
        kind=KIND_TO_PB.get(r.kind, pb.ROUTE_KIND_UNSPECIFIED),
        strategy=_STRATEGY.get(r.strategy, pb.ASSIGNMENT_STRATEGY_HASH),
        variants=[
            pb.RouteVariant(
                name=v.name,
                weight=v.weight,
                model_name=v.model_name,
                model_version=v.model_version,
                upstream=v.upstream,
            )
            for v in r.variants
        ],
        shadows=[
            pb.ShadowTarget(
                shadow_id=s.shadow_id,
                model_name=s.model_name,
                model_version=s.model_version,
                upstream=s.upstream,
                percentage=s.percentage,
            )
            for s in r.shadows
        ],
        forced_variants=[pb.ForcedVariant(unit_id=u, variant=v) for u, v in r.forced_variants],
        layer_id=r.layer_id,
        range_start=r.range_start,
        range_end=r.range_end,
        targeting=[targeting.parse(t) for t in r.targeting],
        header_routes=[
            targeting_pb2.HeaderRoute(header=h, value=val, variant=name)
            for h, val, name in r.header_routes
        ],
    )


def table_to_pb(t: RoutingTable) -> pb.RoutingTable:
    return pb.RoutingTable(
        version=t.version, generated_us=t.generated_us, routes=[route_to_pb(r) for r in t.routes]
    )


def _moments(m: pb.Moments) -> Moments:
    return Moments(int(m.n), float(m.sum), float(m.sum_squares))


def _histogram(
    buckets: list[int], m: pb.Moments, lo: float | None, hi: float | None
) -> LatencyHistogram:
    return LatencyHistogram.from_dense(list(buckets), _moments(m), lo, hi)


def variant_window_from_pb(w: pb.VariantWindow) -> VariantWindow:
    known = w.count > 0
    stats = VariantStats(
        count=int(w.count),
        errors=int(w.errors),
        successes=int(w.successes),
        latency=_histogram(
            list(w.latency_buckets),
            w.latency_seconds,
            w.latency_min_seconds if known else None,
            w.latency_max_seconds if known else None,
        ),
        custom={k: _moments(m) for k, m in w.custom.items()},
        status_codes={k: int(v) for k, v in w.status_codes.items()},
    )
    if not w.HasField("units"):
        return VariantWindow(w.route_id, w.variant, int(w.window_start_us), stats)
    u = w.units
    units = units_from_arrays(u.keys, u.requests, u.errors, u.latency_seconds,
                              {k: (m.n, m.sum) for k, m in u.custom.items()})
    return VariantWindow(w.route_id, w.variant, int(w.window_start_us), stats, units,
                         int(u.overflow_requests))


def shadow_window_from_pb(w: pb.ShadowWindow) -> ShadowWindow:
    stats = ShadowStats(
        compared=int(w.agreed + w.disagreed),
        agreements=int(w.agreed),
        primary_latency=_histogram(
            list(w.primary_latency_buckets), w.primary_latency_seconds, None, None
        ),
        shadow_latency=_histogram(list(w.latency_buckets), w.latency_seconds, None, None),
        shadow_errors=int(w.errors),
        dropped=int(w.dropped),
        disagreements=[
            {
                "at_us": s.at_us,
                "request_id": s.request_id,
                "primary": s.primary_json,
                "shadow": s.shadow_json,
                "reason": s.reason,
            }
            for s in w.samples
        ],
    )
    return ShadowWindow(w.route_id, w.shadow_id, int(w.window_start_us), stats)


def batch_from_pb(b: pb.MetricsBatch) -> MetricsBatch:
    return MetricsBatch(
        sidecar_id=b.sidecar_id,
        sequence=int(b.sequence),
        session=b.session,
        windows=tuple(variant_window_from_pb(w) for w in b.windows),
        shadows=tuple(shadow_window_from_pb(s) for s in b.shadows),
    )
