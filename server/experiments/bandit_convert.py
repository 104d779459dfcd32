"""Bandit settings and report <-> protobuf (used by :mod:`.convert`, the servicer and the
remote client)."""

from __future__ import annotations

from typing import Any

from neural.mlops.server.experiments.bandit import CONTINUOUS, CONVERSION, BanditConfig
from neural.mlops.server.experiments.bandit_report import BanditReport
from neural.mlops.server.timestamps import to_timestamp as ts
from neural.mlops.v1 import experiments_pb2 as pb

KIND_TO_PB = {CONVERSION: pb.BANDIT_METRIC_KIND_CONVERSION,
              CONTINUOUS: pb.BANDIT_METRIC_KIND_CONTINUOUS}
KIND_FROM_PB: dict[int, str] = {int(v): k for k, v in KIND_TO_PB.items()}
KIND_FROM_PB[pb.BANDIT_METRIC_KIND_UNSPECIFIED] = CONVERSION


def bandit_to_pb(b: BanditConfig) -> pb.BanditConfig:
    return pb.BanditConfig(
        interval_seconds=b.interval_seconds, burn_in_units=b.burn_in_units,
        burn_in_seconds=b.burn_in_seconds, min_share=b.min_share, metric=b.metric,
        metric_kind=KIND_TO_PB.get(b.metric_kind, -1),  # type: ignore[arg-type]
        seed=b.seed, minimize=b.minimize,
    )


def bandit_from_pb(m: pb.BanditConfig) -> BanditConfig:
    """A stored test's settings as sent back (every field filled in)."""
    return BanditConfig(
        interval_seconds=m.interval_seconds, burn_in_units=m.burn_in_units,
        burn_in_seconds=m.burn_in_seconds, min_share=m.min_share, metric=m.metric,
        metric_kind=KIND_FROM_PB.get(m.metric_kind, CONVERSION), seed=m.seed,
        minimize=m.minimize,
    )


def bandit_request_from_pb(m: pb.BanditConfig) -> dict[str, Any]:
    """A CreateTest request's settings as the mapping :func:`.bandit.parse_bandit` checks:
    zero / unset fields are left out, so they take the defaults."""
    out: dict[str, Any] = {}
    if m.interval_seconds:
        out["interval_seconds"] = m.interval_seconds
    if m.HasField("burn_in_units"):
        out["burn_in_units"] = m.burn_in_units
    if m.burn_in_seconds:
        out["burn_in_seconds"] = m.burn_in_seconds
    if m.HasField("min_share"):
        out["min_share"] = m.min_share
    if m.metric:
        out["metric"] = m.metric
    if m.metric_kind:
        out["metric_kind"] = KIND_FROM_PB.get(m.metric_kind, f"unknown ({int(m.metric_kind)})")
    if m.seed:
        out["seed"] = m.seed
    if m.minimize:
        out["minimize"] = True
    return out


def bandit_report_to_pb(r: BanditReport, msg: pb.AnalyzeTestResponse) -> None:
    """The typed bandit fields of an analysis (the JSON has the whole report)."""
    msg.probability_best.update(r.p_best)
    msg.expected_regret = r.expected_regret
    for h in r.history:
        msg.bandit_history.append(pb.BanditWeights(
            sequence=h.sequence, at=ts(h.at), weights=h.weights, probability_best=h.p_best,
            observations=h.observations, posterior_means=h.means))
