"""Health measurement: the traffic of a deployment's current step, judged.

The metrics of a step are the route's running totals minus a snapshot taken when the
step began (:func:`subtract`), so a check always sees exactly the traffic of the current
traffic split, whatever width the stored windows have. During a mirrored preview (a
SHADOW rollout, or a blue-green green at 0 %) the new version's side is the shadow
statistics of the mirrored calls, with their agreement with the primary.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from neural.mlops.server import traffic
from neural.mlops.server.clock import from_us, to_us
from neural.mlops.server.deployments import custom_metrics
from neural.mlops.server.deployments.judge import judge, metrics_of, shadow_as_variant
from neural.mlops.server.deployments.model import (
    Deployment,
    DeploymentStrategy,
    HealthCheck,
    PerformanceMetrics,
    PreviewMode,
)
from neural.mlops.server.deployments.store import DeploymentRecord
from neural.mlops.v1.traffic import LatencyHistogram, Moments, VariantStats


def subtract(total: VariantStats, before: VariantStats) -> VariantStats:
    """``total - before`` for running totals (min/max become unknown)."""
    t, b = total.latency, before.latency
    counts = {k: c - b.counts.get(k, 0) for k, c in t.counts.items() if c - b.counts.get(k, 0) > 0}
    latency = LatencyHistogram(counts, t.count - b.count, t.sum - b.sum,
                               t.sum_squares - b.sum_squares, None, None)
    custom = {}
    for k, m in total.custom.items():
        old = before.custom.get(k, Moments())
        if m.n - old.n > 0:
            custom[k] = Moments(m.n - old.n, m.sum - old.sum, m.sum_squares - old.sum_squares)
    codes = {k: c - before.status_codes.get(k, 0) for k, c in total.status_codes.items()}
    return VariantStats(
        total.count - before.count,
        total.errors - before.errors,
        total.successes - before.successes,
        latency,
        custom,
        {k: c for k, c in codes.items() if c > 0},
    )


def mirrored(d: Deployment) -> bool:
    """Whether the new version of ``d`` only sees mirrored traffic at its current step."""
    return d.plan.steps[d.step_index] == 0 and (
        d.strategy is DeploymentStrategy.SHADOW or d.plan.preview is PreviewMode.MIRROR
    )


async def measure(conn: AsyncConnection, rec: DeploymentRecord, now_us: int,
                  request_count: int | None = None,
                  totals: dict[str, VariantStats] | None = None) -> HealthCheck:
    """Judge the current step of ``rec`` at ``now_us``.

    The manually reported metrics (``update_metrics``) are judged when ``request_count``
    is given, or when they exist and no live traffic reached the new version; otherwise
    the live window. ``totals`` are the route's running totals when the caller read them
    already (the controller reads many routes at once)."""
    d = rec.deployment
    seconds = max((now_us - to_us(d.step_started_at)) / 1e6, 0.0)
    snapshot = {k: VariantStats.from_dict(s) for k, s in (rec.state.get("snapshot") or {}).items()}
    if totals is None:
        totals = await traffic.totals(conn, d.deployment_id)
    window = {k: subtract(s, snapshot.get(k, VariantStats())) for k, s in totals.items()}
    stable_stats = window.get(d.stable_variant)
    agreement = None
    if mirrored(d):
        ss = await traffic.shadow_totals(conn, d.deployment_id)
        new_stats: VariantStats | None = shadow_as_variant(ss)
        agreement = (ss.agreements, ss.compared)
    else:
        new_stats = window.get(d.new_variant)
    manual = rec.state.get("current_metrics")
    rules = d.rollback_config.metric_rules
    no_live = new_stats is None or new_stats.count == 0
    if request_count is not None or (manual is not None and no_live):
        source = "manual"
        new = PerformanceMetrics.from_dict(manual) if manual else PerformanceMetrics()
        if request_count is not None:
            new.request_count = request_count
        j = custom_metrics.skipped(judge(d.rollback_config, d.baseline_metrics, new), rules,
                                   "custom metric rules judge live traffic only")
    else:
        source = "none" if no_live else "live"
        j = judge(d.rollback_config, d.baseline_metrics,
                  metrics_of(new_stats or VariantStats(), seconds),
                  new_stats=new_stats, stable_stats=stable_stats, agreement=agreement)
        if agreement is not None:
            j = custom_metrics.skipped(j, rules, "custom metric rules judge served traffic; "
                                       "the mirrored preview is judged without them")
        else:
            j = custom_metrics.apply(j, rules, new_stats, stable_stats,
                                     d.rollback_config.min_requests_before_check,
                                     compare=d.traffic_percentage < 100.0)
    if agreement is not None:
        j.tests["agreement"] = {"agreements": agreement[0], "compared": agreement[1]}
    return HealthCheck(at=from_us(now_us), verdict=j.verdict, reasons=j.reasons, source=source,
                       step_index=d.step_index, traffic_percentage=d.traffic_percentage,
                       new=j.new, stable=j.stable, tests=j.tests)
