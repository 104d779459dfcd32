"""Domain <-> protobuf for experiments; shared by the servicer and the remote client."""

from __future__ import annotations

import json
import math
from typing import Any

from neural.mlops.server.errors import InvalidArgument
from neural.mlops.server.experiments.bandit_convert import (
    bandit_from_pb,
    bandit_report_to_pb,
    bandit_to_pb,
)
from neural.mlops.server.experiments.config import HOLM
from neural.mlops.server.experiments.guardrails import Guardrail
from neural.mlops.server.experiments.layers import LayerSpec
from neural.mlops.server.experiments.model import (
    ABTest,
    SplitChange,
    TestStatus,
    TrafficSplitStrategy,
    Variant,
)
from neural.mlops.server.experiments.recording import RequestRecord
from neural.mlops.server.experiments.reporting import TestAnalysis
from neural.mlops.server.timestamps import from_timestamp as dt
from neural.mlops.server.timestamps import to_timestamp as ts
from neural.mlops.v1 import experiments_pb2 as pb
from neural.mlops.v1 import targeting

__all__ = [
    "STATUS_FROM_PB",
    "STATUS_TO_PB",
    "STRATEGY_FROM_PB",
    "STRATEGY_TO_PB",
    "analysis_from_pb",
    "analysis_to_pb",
    "dt",
    "guardrails_from_pb",
    "guardrails_to_pb",
    "layer_from_request",
    "layer_to_request",
    "record_from_pb",
    "record_to_pb",
    "strategy_to_pb",
    "test_from_pb",
    "test_to_pb",
    "ts",
]

STRATEGY_TO_PB = {
    TrafficSplitStrategy.HASH_BASED: pb.TRAFFIC_SPLIT_STRATEGY_HASH_BASED,
    TrafficSplitStrategy.RANDOM: pb.TRAFFIC_SPLIT_STRATEGY_RANDOM,
    TrafficSplitStrategy.ROUND_ROBIN: pb.TRAFFIC_SPLIT_STRATEGY_ROUND_ROBIN,
    TrafficSplitStrategy.MULTI_ARMED_BANDIT: pb.TRAFFIC_SPLIT_STRATEGY_MULTI_ARMED_BANDIT,
}
STRATEGY_FROM_PB = {v: k for k, v in STRATEGY_TO_PB.items()}
STRATEGY_FROM_PB[pb.TRAFFIC_SPLIT_STRATEGY_UNSPECIFIED] = TrafficSplitStrategy.HASH_BASED

STATUS_TO_PB = {
    TestStatus.DRAFT: pb.TEST_STATUS_DRAFT,
    TestStatus.RUNNING: pb.TEST_STATUS_RUNNING,
    TestStatus.PAUSED: pb.TEST_STATUS_PAUSED,
    TestStatus.STOPPED: pb.TEST_STATUS_STOPPED,
    TestStatus.CONCLUDED: pb.TEST_STATUS_CONCLUDED,
}
STATUS_FROM_PB = {v: k for k, v in STATUS_TO_PB.items()}
DECISION_RULE_TO_PB = {
    "fixed_horizon": pb.DECISION_RULE_FIXED_HORIZON,
    "sequential": pb.DECISION_RULE_SEQUENTIAL,
}
DECISION_RULE_FROM_PB: dict[int, str] = {int(v): k for k, v in DECISION_RULE_TO_PB.items()}
DECISION_RULE_FROM_PB[pb.DECISION_RULE_UNSPECIFIED] = "fixed_horizon"


def decision_rule_to_pb(rule: str) -> pb.DecisionRule:
    # A rule the domain refuses goes as a number no enum value has: the server names it. An
    # open proto3 enum field holds any int32; the generated stub's enum class cannot say so.
    return DECISION_RULE_TO_PB.get(rule, -1)  # type: ignore[arg-type]


def strategy_to_pb(value: Any) -> int:
    raw = getattr(value, "value", value)
    try:
        return STRATEGY_TO_PB[TrafficSplitStrategy(str(raw).lower())]
    except ValueError:
        return -1  # the server answers INVALID_ARGUMENT naming the field


def _named(enum: Any, prefix: str, value: str) -> Any:
    """The wire value of a closed vocabulary's string (checked by the domain already)."""
    return enum.Value(prefix + value.upper())


def _name(enum: Any, prefix: str, value: int) -> str | None:
    """The string a wire value stands for; None for UNSPECIFIED (the default applies)."""
    if value == 0 or value not in enum.values():
        return None
    return str(enum.Name(value)).removeprefix(prefix).lower()


def multiple_testing_to_pb(method: str) -> str:
    """The wire name of a correction method (one the domain accepted)."""
    return "MULTIPLE_TESTING_METHOD_" + method.upper()


def multiple_testing_from_pb(value: int) -> str:
    """"holm" (also for UNSPECIFIED) or "benjamini_hochberg"."""
    return _name(pb.MultipleTestingMethod, "MULTIPLE_TESTING_METHOD_", value) or HOLM


def guardrails_to_pb(items: tuple[Guardrail, ...]) -> list[pb.Guardrail]:
    return [pb.Guardrail(metric=g.metric, tolerance=g.tolerance,
                         direction=_named(pb.GuardrailDirection, "GUARDRAIL_DIRECTION_",
                                          g.direction))
            for g in items]


def guardrails_from_pb(items: Any) -> list[dict[str, Any]]:
    """As dicts, for :func:`~.guardrails.parse_guardrails` to validate (UNSPECIFIED is the
    default direction)."""
    return [{"metric": g.metric, "tolerance": g.tolerance,
             "direction": _name(pb.GuardrailDirection, "GUARDRAIL_DIRECTION_", g.direction)}
            for g in items]


def test_to_pb(t: ABTest) -> pb.ABTest:
    msg = pb.ABTest(
        test_id=t.test_id,
        name=t.name,
        description=t.description,
        status=STATUS_TO_PB[t.status],
        strategy=STRATEGY_TO_PB[t.strategy],
        variants=[
            pb.Variant(name=v.name, model_ref=v.model_ref, weight=v.weight) for v in t.variants
        ],
        control=t.control,
        model_name=t.model_name,
        traffic_split=t.traffic_split,
        created_by=t.created_by,
        created_at=ts(t.created_at),
        winner=t.winner,
        conclusion=t.conclusion,
        settings=pb.AnalysisSettings(
            confidence_level=t.confidence_level,
            minimum_detectable_effect=t.minimum_detectable_effect,
            power=t.power,
            decision_rule=decision_rule_to_pb(t.decision_rule),
            sequential_tau=t.sequential_tau,
            sequential_tuning=t.sequential_tuning,
            srm_threshold=t.srm_threshold,
            multiple_testing=multiple_testing_to_pb(t.multiple_testing),
            prior_mean=t.prior_mean,
            prior_sd=t.prior_sd,
        ),
        forced_variants=t.forced_variants,
        split_history=[
            pb.SplitChange(
                at=ts(h.at), actor=h.actor, weights=h.weights, explicit=h.explicit, reason=h.reason
            )
            for h in t.split_history
        ],
        running_seconds=t.running_seconds,
        guardrails=guardrails_to_pb(t.guardrails),
    )
    if t.bandit is not None:
        msg.bandit.CopyFrom(bandit_to_pb(t.bandit))
    msg.layer, msg.layer_share = t.layer, t.layer_share
    if t.layer_range is not None:
        msg.range.CopyFrom(pb.LayerRange(start=t.layer_range[0], end=t.layer_range[1]))
    msg.targeting.extend(targeting.parse(x) for x in t.targeting)
    if t.started_at is not None:
        msg.started_at.CopyFrom(ts(t.started_at))
    if t.ended_at is not None:
        msg.ended_at.CopyFrom(ts(t.ended_at))
    return msg


def test_from_pb(m: pb.ABTest) -> ABTest:
    s = m.settings
    return ABTest(
        test_id=m.test_id,
        name=m.name,
        description=m.description,
        status=STATUS_FROM_PB[m.status],
        strategy=STRATEGY_FROM_PB[m.strategy],
        variants=[Variant(v.name, v.model_ref, v.weight) for v in m.variants],
        control=m.control,
        model_name=m.model_name,
        created_by=m.created_by,
        created_at=dt(m.created_at),
        started_at=dt(m.started_at) if m.HasField("started_at") else None,
        ended_at=dt(m.ended_at) if m.HasField("ended_at") else None,
        winner=m.winner,
        conclusion=m.conclusion,
        confidence_level=s.confidence_level,
        minimum_detectable_effect=s.minimum_detectable_effect,
        power=s.power,
        decision_rule=DECISION_RULE_FROM_PB[s.decision_rule],
        sequential_tau=s.sequential_tau,
        sequential_tuning=s.sequential_tuning,
        srm_threshold=s.srm_threshold,
        multiple_testing=multiple_testing_from_pb(s.multiple_testing),
        prior_mean=s.prior_mean,
        prior_sd=s.prior_sd,
        forced_variants=dict(m.forced_variants),
        split_history=[
            SplitChange(dt(h.at), h.actor, dict(h.weights), h.explicit, h.reason)
            for h in m.split_history
        ],
        running_seconds=m.running_seconds,
        guardrails=tuple(
            Guardrail(g.metric, _name(pb.GuardrailDirection, "GUARDRAIL_DIRECTION_", g.direction)
                      or "increase", g.tolerance)
            for g in m.guardrails),
        bandit=bandit_from_pb(m.bandit) if m.HasField("bandit") else None,
        layer=m.layer,
        layer_share=m.layer_share,
        layer_range=(m.range.start, m.range.end) if m.HasField("range") else None,
        targeting=tuple(targeting.format(x) for x in m.targeting),
    )


def layer_to_request(spec: LayerSpec, req: pb.CreateTestRequest) -> None:
    """The layer arguments of a checked create_test on its request."""
    req.layer = spec.layer
    if spec.fixed is not None:
        req.range.CopyFrom(pb.LayerRange(start=spec.fixed[0], end=spec.fixed[1]))
    else:
        req.layer_share = spec.share
    req.targeting.extend(targeting.parse(x) for x in spec.targeting)


def layer_from_request(req: pb.CreateTestRequest) -> dict[str, Any]:
    """CreateSpec's layer arguments from a request (conditions as their texts; a wrong
    one is refused naming its part, ``targeting[i].op``)."""
    try:
        targeting.validate(req.targeting)
    except targeting.ConditionError as exc:
        raise InvalidArgument(str(exc), field=exc.field) from None
    return {
        "layer": req.layer,
        "layer_share": req.layer_share or None,
        "layer_range": (req.range.start, req.range.end) if req.HasField("range") else None,
        "targeting": [targeting.format(x) for x in req.targeting],
    }


def record_to_pb(r: RequestRecord) -> pb.RequestRecord:
    msg = pb.RequestRecord(
        variant=r.variant or "",
        unit_id="" if r.user_id is None else str(r.user_id),
        error=bool(r.error),
        custom_metrics=dict(r.custom_metrics or {}),
        status_code=r.status_code or "",
    )
    if r.success is not None:
        msg.success = bool(r.success)
    if r.latency is not None:
        msg.latency = float(r.latency)
    if r.timestamp is not None:
        msg.timestamp.CopyFrom(ts(r.timestamp))
    return msg


def record_from_pb(m: pb.RequestRecord) -> RequestRecord:
    return RequestRecord(
        variant=m.variant or None,
        success=m.success if m.HasField("success") else None,
        latency=m.latency if m.HasField("latency") else None,
        custom_metrics=dict(m.custom_metrics),
        error=m.error,
        user_id=m.unit_id or None,
        timestamp=dt(m.timestamp) if m.HasField("timestamp") else None,
        status_code=m.status_code or None,
    )


def analysis_to_pb(result: TestAnalysis) -> pb.AnalyzeTestResponse:
    report = result.report
    p = report.p_value
    action = report.recommendation.action
    valid = result.bandit is None  # adaptive allocation: no valid p-value (bandit_report)
    msg = pb.AnalyzeTestResponse(
        analysis_json=json.dumps(result.to_dict(), sort_keys=True, allow_nan=False),
        statistically_significant=valid and report.statistically_significant,
        p_value=p if valid and p is not None and math.isfinite(p) else None,
        recommendation=f"RECOMMENDATION_{action.name}",
    )
    if result.bandit is not None:
        bandit_report_to_pb(result.bandit, msg)
    return msg


def analysis_from_pb(m: pb.AnalyzeTestResponse) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(m.analysis_json)
    return report
