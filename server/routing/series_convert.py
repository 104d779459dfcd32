"""Protobuf forms of the console's read models: ListSidecars and GetTrafficSeries."""

from __future__ import annotations

import json

from neural.mlops.server.routing.series import VariantPoint, WindowPoint
from neural.mlops.server.routing.sidecars import SidecarInfo
from neural.mlops.v1 import routing_pb2 as pb
from neural.mlops.v1.traffic import LATENCY_BOUNDS, LatencyHistogram, ShadowStats


def sidecar_to_pb(info: SidecarInfo) -> pb.SidecarStatus:
    return pb.SidecarStatus(
        sidecar_id=info.sidecar_id, address=info.address, connected=info.connected,
        connected_us=info.connected_us, table_version=info.table_version,
        last_report_us=info.last_report_us)


def _buckets(histogram: LatencyHistogram) -> list[pb.LatencyBucket]:
    out = []
    for i in sorted(histogram.counts):
        count = histogram.counts[i]
        if count > 0:
            upper = LATENCY_BOUNDS[i] if i < len(LATENCY_BOUNDS) else float("inf")
            out.append(pb.LatencyBucket(upper_seconds=upper, count=count))
    return out


def _variant(point: VariantPoint) -> pb.VariantPoint:
    w = point.window
    latency = w.latency
    return pb.VariantPoint(
        variant=point.variant, count=w.count, errors=w.errors, successes=w.successes,
        latency_mean_seconds=latency.mean or 0.0,
        latency_p50_seconds=latency.quantile(0.5) or 0.0,
        latency_p95_seconds=latency.quantile(0.95) or 0.0,
        latency_p99_seconds=latency.quantile(0.99) or 0.0,
        custom_means={k: m.mean for k, m in w.custom.items() if m.n},
        cumulative_count=point.cumulative.count,
        cumulative_successes=point.cumulative.successes,
        cumulative_p_value=-1.0 if point.p_value is None else point.p_value,
        **_sequential(point))


def _sequential(point: VariantPoint) -> dict[str, float]:
    if point.sequential is None:
        return {}
    p, low, high = point.sequential
    return {"sequential_p_value": p, "sequential_ci_low": low, "sequential_ci_high": high}


def _shadow(s: ShadowStats) -> pb.ShadowPoint:
    return pb.ShadowPoint(
        compared=s.compared, agreements=s.agreements, shadow_errors=s.shadow_errors,
        dropped=s.dropped, primary_latency=_buckets(s.primary_latency),
        shadow_latency=_buckets(s.shadow_latency),
        disagreements_json=[json.dumps(d, sort_keys=True) for d in s.disagreements])


def series_to_pb(route_id: str, points: list[WindowPoint], token: str) -> pb.TrafficSeries:
    windows = []
    for point in points:
        window = pb.TrafficWindowPoint(window_start_us=point.start_us,
                                       variants=[_variant(v) for v in point.variants])
        if point.shadow is not None:
            window.shadow.CopyFrom(_shadow(point.shadow))
        windows.append(window)
    return pb.TrafficSeries(route_id=route_id, windows=windows, next_page_token=token)
