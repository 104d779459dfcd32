"""What ``create_test`` accepts, and its validation (no I/O).

The Python client runs :func:`validate_spec` before sending, so embedded and remote
callers get the same error for the same bad input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from neural.mlops.server import validation as v
from neural.mlops.server.errors import InvalidArgument
from neural.mlops.server.experiments.bandit import BanditConfig, parse_bandit
from neural.mlops.server.experiments.config import (
    CORRECTIONS,
    DECISION_FIXED,
    DECISION_RULES,
    DECISION_SEQUENTIAL,
    HOLM,
    SRM_THRESHOLD,
)
from neural.mlops.server.experiments.guardrails import Guardrail, parse_guardrails
from neural.mlops.server.experiments.layers import LayerSpec, parse_layer
from neural.mlops.server.experiments.model import TrafficSplitStrategy
from neural.mlops.server.experiments.sequential import DEFAULT_TUNING

MAX_VARIANTS = 16

Declared = tuple[str, str, float]  # (variant name, model_ref, weight)


@dataclass(slots=True)
class CreateSpec:
    """Everything create_test accepts (seed arguments first)."""

    name: str
    description: str = ""
    control_variant: str | None = None
    treatment_variant: str | None = None
    traffic_split: float | None = None
    strategy: TrafficSplitStrategy | str = TrafficSplitStrategy.HASH_BASED
    created_by: str = ""
    variants: Sequence[Declared] | None = None
    control: str = "control"
    confidence_level: float = 0.95
    minimum_detectable_effect: float = 0.05
    power: float = 0.8
    decision_rule: str = DECISION_FIXED
    sequential_tau: float | None = None  # None / 0: the mixture scaled by sequential_tuning
    model_name: str = ""
    sequential_tuning: float = DEFAULT_TUNING
    srm_threshold: float = SRM_THRESHOLD
    multiple_testing: str = HOLM
    prior_mean: float = 0.0
    prior_sd: float = 0.0
    guardrails: Sequence[Any] | None = None  # metric names or {metric, direction, tolerance}
    bandit: Any = None  # multi_armed_bandit settings: a mapping or bandit.BanditConfig
    layer: str = ""  # "" = the model's own layer
    layer_share: float | None = None  # share of the layer's hash space (None = all)
    layer_range: tuple[float, float] | None = None  # instead of layer_share: exactly this
    targeting: Sequence[str] | None = None  # condition texts, ANDed


@dataclass(frozen=True, slots=True)
class ValidSpec:
    name: str
    description: str
    strategy: TrafficSplitStrategy
    created_by: str  # "" = the caller
    control: str
    declared: list[Declared]
    ordered: list[Declared]  # hash order: non-control first, control last
    confidence_level: float
    minimum_detectable_effect: float
    power: float
    decision_rule: str
    sequential_tau: float  # 0: scaled mixture
    model_name: str
    sequential_tuning: float = DEFAULT_TUNING
    srm_threshold: float = SRM_THRESHOLD
    multiple_testing: str = HOLM
    prior_mean: float = 0.0
    prior_sd: float = 0.0
    guardrails: tuple[Guardrail, ...] = ()
    bandit: BanditConfig | None = None
    layer: LayerSpec = LayerSpec("", 1.0, None, ())

    def ref_fields(self, by_variants: bool) -> list[tuple[str, str]]:
        """(argument name, model_ref) of every variant, named as the caller passed them."""
        if by_variants:
            return [("variants", r) for _, r, _ in self.declared]
        return [("control_variant", self.declared[0][1]),
                ("treatment_variant", self.declared[1][1])]


def parse_strategy(value: object) -> TrafficSplitStrategy:
    """A strategy from its enum, name or value (any case)."""
    if isinstance(value, TrafficSplitStrategy):
        return value
    raw = getattr(value, "value", value)
    try:
        return TrafficSplitStrategy(str(raw).lower())
    except ValueError:
        allowed = ", ".join(s.value for s in TrafficSplitStrategy)
        raise InvalidArgument(
            f"strategy must be one of {allowed}, got {value!r}", field="strategy"
        ) from None


def model_ref(value: object, field_name: str) -> str:
    """A ``name:version`` (or ``name:alias``, or bare ``name``) model reference."""
    if not isinstance(value, str) or not value:
        raise InvalidArgument(
            f"{field_name} must be a model reference 'name:version'", field=field_name
        )
    name, _, version = value.partition(":")
    v.name(name, field_name)
    if version:
        v.name(version, field_name)
    return value


def validate_spec(spec: CreateSpec) -> ValidSpec:
    """Check every create_test argument; InvalidArgument names the first bad one."""
    name = v.text(spec.name, "name", limit=256).strip()
    if not name:
        raise InvalidArgument("name is required", field="name")
    description = v.text(spec.description, "description")
    strategy = parse_strategy(spec.strategy)
    created_by = v.text(spec.created_by, "created_by", limit=320).strip()
    control = v.name(spec.control or "control", "control")
    declared = _declared(spec, control)
    ordered = [d for d in declared if d[0] != control] + [d for d in declared if d[0] == control]
    conf, mde, power, tau = _settings(spec)
    control_ref = next(d[1] for d in declared if d[0] == control)
    model_name = (
        v.name(spec.model_name, "model_name") if spec.model_name else control_ref.split(":")[0]
    )
    return ValidSpec(name, description, strategy, created_by, control, declared, ordered, conf,
                     mde, power, spec.decision_rule, tau, model_name, **_more_settings(spec),
                     guardrails=parse_guardrails(spec.guardrails),
                     bandit=parse_bandit(spec.bandit,
                                         strategy is TrafficSplitStrategy.MULTI_ARMED_BANDIT,
                                         len(declared)),
                     layer=parse_layer(spec.layer, spec.layer_share, spec.layer_range,
                                       spec.targeting))


def _declared(spec: CreateSpec, control: str) -> list[Declared]:
    """The variants as declared: the ``variants`` list, or control and treatment."""
    if spec.variants is not None:
        if spec.control_variant or spec.treatment_variant:
            raise InvalidArgument(
                "pass either control_variant/treatment_variant or variants, not both",
                field="variants",
            )
        declared = [_variant(i, item) for i, item in enumerate(spec.variants)]
    else:
        if spec.control_variant is None or spec.treatment_variant is None:
            raise InvalidArgument(
                "control_variant and treatment_variant are required", field="control_variant"
            )
        split = (
            0.5 if spec.traffic_split is None else v.fraction(spec.traffic_split, "traffic_split")
        )
        declared = [
            (control, model_ref(spec.control_variant, "control_variant"), 1.0 - split),
            ("treatment", model_ref(spec.treatment_variant, "treatment_variant"), split),
        ]
        if control == "treatment":
            raise InvalidArgument(
                "the control variant cannot be named 'treatment'", field="control"
            )
    names = [d[0] for d in declared]
    if len(declared) < 2 or len(declared) > MAX_VARIANTS:
        raise InvalidArgument(f"a test needs 2 to {MAX_VARIANTS} variants", field="variants")
    if len(set(names)) != len(names):
        raise InvalidArgument(f"variant names must be unique: {names}", field="variants")
    if control not in names:
        raise InvalidArgument(f"no variant is named {control!r} (the control)", field="control")
    total = math.fsum(d[2] for d in declared)
    if abs(total - 1.0) > 1e-9:
        raise InvalidArgument(f"variant weights must sum to 1, got {total!r}", field="variants")
    return declared


def _variant(i: int, item: Any) -> Declared:
    try:
        vname, ref, weight = item
    except (TypeError, ValueError):
        raise InvalidArgument(
            f"variants[{i}] must be (name, model_ref, weight)", field="variants"
        ) from None
    return (v.name(vname, "variants"), model_ref(ref, "variants"), v.fraction(weight, "variants"))


def _settings(spec: CreateSpec) -> tuple[float, float, float, float]:
    """(confidence_level, minimum_detectable_effect, power, sequential_tau), checked with
    the decision rule."""
    conf = v.finite(spec.confidence_level, "confidence_level")
    if not 0.5 <= conf < 1.0:
        raise InvalidArgument("confidence_level must be in [0.5, 1)", field="confidence_level")
    mde = v.finite(spec.minimum_detectable_effect, "minimum_detectable_effect")
    if not -1.0 < mde <= 10.0 or mde == 0.0:
        raise InvalidArgument(
            "minimum_detectable_effect (a relative lift, 0.05 = 5%, -0.05 to plan for a "
            "decrease) must be in (-1, 10] and not 0",
            field="minimum_detectable_effect",
        )
    power = v.finite(spec.power, "power")
    if not 0.5 <= power < 1.0:
        raise InvalidArgument("power must be in [0.5, 1)", field="power")
    if spec.decision_rule not in DECISION_RULES:
        raise InvalidArgument(
            f"decision_rule must be {DECISION_FIXED!r} or {DECISION_SEQUENTIAL!r}",
            field="decision_rule",
        )
    tau = 0.0 if spec.sequential_tau is None else v.finite(spec.sequential_tau, "sequential_tau")
    if not 0.0 <= tau <= 1.0:
        raise InvalidArgument(
            "sequential_tau must be in (0, 1], or 0 for the scaled mixture", field="sequential_tau"
        )
    return conf, mde, power, tau


def _more_settings(spec: CreateSpec) -> dict[str, Any]:
    """The sequential tuning, SRM threshold, multiple-testing correction and prior, checked."""
    tuning = v.finite(spec.sequential_tuning, "sequential_tuning")
    if not 1.0 <= tuning <= 1e12:
        raise InvalidArgument(
            "sequential_tuning (a sample size) must be in [1, 1e12]", field="sequential_tuning"
        )
    srm = v.finite(spec.srm_threshold, "srm_threshold")
    if not 0.0 < srm < 0.5:
        raise InvalidArgument("srm_threshold must be in (0, 0.5)", field="srm_threshold")
    correction = str(spec.multiple_testing or HOLM).lower()
    correction = {"bh": "benjamini_hochberg", "fdr_bh": "benjamini_hochberg"}.get(
        correction, correction
    )
    if correction not in CORRECTIONS:
        raise InvalidArgument(
            f"multiple_testing must be one of {', '.join(CORRECTIONS)}", field="multiple_testing"
        )
    prior_mean = v.finite(spec.prior_mean, "prior_mean")
    prior_sd = v.finite(spec.prior_sd, "prior_sd")
    if not -10.0 <= prior_mean <= 10.0:
        raise InvalidArgument("prior_mean (a relative effect) must be in [-10, 10]",
                              field="prior_mean")
    if not 0.0 <= prior_sd <= 100.0:
        raise InvalidArgument("prior_sd must be in [0, 100] (0: flat prior)", field="prior_sd")
    return {"sequential_tuning": tuning, "srm_threshold": srm, "multiple_testing": correction,
            "prior_mean": prior_mean, "prior_sd": prior_sd}
