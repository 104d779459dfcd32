"""Whether a test is done: the planned sample size, and the recommendation it leads to.

* Sample size: Cohen's arcsine effect size ``h`` of the minimum detectable (relative)
  lift over the control's rate, solved for the per-arm size at the configured split that
  reaches the target power (:func:`.statistics.sample_size_two_proportions`). Analysed
  by unit, that size (in requests) is multiplied by the design effect ``deff`` (the
  by-unit variance of the difference over the binomial one; Kish, *Survey Sampling*,
  1965): ``n`` clustered requests carry the information of ``n / deff`` independent
  ones, and the achieved power is computed at those effective sizes.
* Fixed horizon: decide only at the planned size; sequential: decide the first time the
  always-valid p-value is <= alpha. A sample-ratio mismatch always says ``stop``.
* Guardrails: latency and the error rate must not be significantly worse (adjusted across
  the metrics by the test's correction); under the sequential rule by their always-valid
  p-values, so that looking often does not raise false alarms.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

from neural.mlops.server.experiments import statistics
from neural.mlops.server.experiments.config import DECISION_SEQUENTIAL, AnalysisConfig
from neural.mlops.server.experiments.finite import Warnings
from neural.mlops.server.experiments.report import (
    Action,
    Comparison,
    PowerPlan,
    Recommendation,
    SampleRatioCheck,
)
from neural.mlops.v1.traffic import VariantStats

GUARDRAIL_METRICS = ("latency", "error_rate")
NO_TREATMENT = Recommendation(Action.KEEP_RUNNING, None, "no treatment variant")


def plan_power(
    stats: Mapping[str, VariantStats],
    weights: Mapping[str, float],
    control_name: str,
    treatment_name: str,
    cfg: AnalysisConfig,
    alpha: float,
    elapsed_seconds: float | None,
    warnings: Warnings,
    design_effect: float | None = None,
) -> PowerPlan:
    """The sample size the test needs and how far it is; ``stats`` holds every variant;
    ``design_effect``: the by-unit one of the compared variant (None: by request)."""
    control = stats[control_name]
    mde = cfg.minimum_detectable_effect
    base = control.success_rate
    observed = sum(s.count for s in stats.values())
    plan = PowerPlan(mde, cfg.power, base, observed)
    w_c, w_t = weights.get(control_name, 0.0), weights.get(treatment_name, 0.0)
    if base is None or base <= 0.0 or base >= 1.0 or w_c <= 0 or w_t <= 0:
        warnings.add("sample size needs a control success rate strictly between 0% and 100%")
        return plan
    target = min(base * (1.0 + mde), 1.0)
    h = statistics.cohens_h(target, base)
    ratio = w_t / w_c
    deff = design_effect if design_effect is not None and design_effect > 0 else 1.0
    plan = replace(plan, design_effect=design_effect)
    n_c = statistics.sample_size_two_proportions(h, ratio, alpha, cfg.power) * deff
    if not math.isfinite(n_c):
        return plan
    n_c_req = math.ceil(n_c)
    n_t_req = math.ceil(n_c * ratio)
    # Whole-test traffic needed so that both arms reach their size at the configured split.
    required_total = math.ceil(max(n_c_req / w_c, n_t_req / w_t) * sum(weights.values()))
    c_n = control.count
    t_n = stats.get(treatment_name, VariantStats()).count
    plan = replace(
        plan,
        target_rate=target,
        effect_size_h=h,
        required_per_arm={control_name: n_c_req, treatment_name: n_t_req},
        required_total=required_total,
        progress=min(min(c_n / n_c_req, t_n / n_t_req), 1.0),
    )
    if c_n > 0 and t_n > 0:
        plan = replace(
            plan,
            achieved_power=statistics.power_two_proportions(h, c_n / deff, t_n / c_n, alpha),
        )
    if elapsed_seconds and elapsed_seconds > 0 and observed > 0:
        rate = observed / elapsed_seconds
        plan = replace(plan, requests_per_second=rate,
                       estimated_seconds_remaining=max(required_total - observed, 0) / rate)
    return plan


def recommend(
    top: Comparison,
    srm: SampleRatioCheck,
    power: PowerPlan,
    cfg: AnalysisConfig,
    control_name: str,
    treatment_name: str,
    n_c: int,
    n_t: int,
) -> Recommendation:
    """The action for ``treatment_name`` against control, guardrails included."""
    rec = _decide(top, srm, power, cfg, control_name, treatment_name, n_c, n_t)
    guardrails = _guardrails(top, cfg.decision_rule == DECISION_SEQUENTIAL)
    reason = rec.reason
    if guardrails and rec.action == Action.SHIP_TREATMENT:
        reason += "; guardrail warning: " + "; ".join(guardrails) + " - review before shipping"
    return replace(rec, reason=reason, guardrails=guardrails)


def _decide(
    top: Comparison,
    srm: SampleRatioCheck,
    power: PowerPlan,
    cfg: AnalysisConfig,
    control_name: str,
    treatment_name: str,
    n_c: int,
    n_t: int,
) -> Recommendation:
    if srm.detected:
        return Recommendation(
            Action.STOP,
            None,
            f"sample ratio mismatch (chi-square p = {srm.p_value:.2g} < "
            f"{cfg.srm_threshold}): the observed split differs from the configured one, "
            "so the comparison is not trustworthy; fix the assignment and restart",
        )
    if n_c == 0 or n_t == 0:
        return Recommendation(Action.KEEP_RUNNING, None, "an arm has no traffic yet")
    if cfg.decision_rule == DECISION_SEQUENTIAL:
        return _sequential_decision(top, cfg, control_name, treatment_name)
    return _fixed_decision(top, power, control_name, treatment_name)


def _verdict(win: bool, control_name: str, treatment_name: str, because: str) -> Recommendation:
    return Recommendation(
        Action.SHIP_TREATMENT if win else Action.KEEP_CONTROL,
        treatment_name if win else control_name,
        f"{because}{treatment_name} is {'better' if win else 'worse'} than {control_name}",
    )


def _sequential_decision(
    top: Comparison, cfg: AnalysisConfig, control_name: str, treatment_name: str
) -> Recommendation:
    """Decided once the always-valid p-value is <= alpha. The direction is the side of 0
    the intersected confidence sequence lies on (the evidence of every look), never this
    look's estimate alone: a test significant for treatment at one look and flat at the
    next still ships treatment, with the interval that says so. The first conclusive
    look decides; when later looks contradict it the reason says so."""
    seq = top.sequential
    p = seq.p_value if seq is not None else None
    alpha = 1 - cfg.confidence_level
    if seq is not None and seq.statistically_significant:
        cs = seq.confidence_sequence
        interval = (
            f"; confidence sequence [{cs[0]:.4g}, {cs[1]:.4g}]"
            if cs[0] is not None and cs[1] is not None else ""
        )
        if seq.running.empty:
            interval = ("; later looks contradict the decision (the intersected confidence "
                        "sequence is empty: an effect that changes over time?) - investigate")
        rec = _verdict(seq.direction > 0, control_name, treatment_name,
                       f"always-valid p = {p:.3g} <= {alpha:.3g}; ")
        return replace(rec, reason=rec.reason + interval)
    return Recommendation(
        Action.KEEP_RUNNING,
        None,
        f"always-valid p = {p if p is not None else 'n/a'}; "
        "not yet conclusive (peeking is safe with the sequential rule)",
    )


def _fixed_decision(
    top: Comparison, power: PowerPlan, control_name: str, treatment_name: str
) -> Recommendation:
    p = top.p_value
    if not (power.progress is not None and power.progress >= 1.0):
        needed = power.required_total
        return Recommendation(
            Action.KEEP_RUNNING,
            None,
            f"planned sample size not reached ({power.observed_total} of {needed} requests); "
            "a fixed-horizon test must not be decided early"
            if needed
            else "the sample size cannot be planned yet (no baseline success rate)",
        )
    if top.statistically_significant:
        return _verdict(
            (top.improvement.absolute or 0.0) > 0, control_name, treatment_name,
            f"p = {p:.3g} at the planned sample size; ",
        )
    return Recommendation(
        Action.KEEP_CONTROL,
        control_name,
        f"planned sample size reached and no significant difference (p = "
        f"{p if p is None else round(p, 4)}); keep {control_name}",
    )


def _guardrails(top: Comparison, sequential: bool) -> list[str]:
    """Latency or error rate significantly worse (adjusted p-values; ``sequential``: the
    always-valid ones), one sentence each."""
    out = []
    for key, m in top.metrics.items():
        if key not in GUARDRAIL_METRICS:
            continue
        if sequential:
            seq = m.sequential
            if seq is None or not seq.statistically_significant or seq.direction <= 0:
                continue
            p, what = seq.p_value_adjusted, "adjusted always-valid p"
        else:
            if not m.statistically_significant or (m.difference or 0) <= 0:
                continue
            p, what = m.p_value_adjusted, "adjusted p"
        p_text = "n/a" if p is None else f"{p:.3g}"
        if m.lift is not None:
            out.append(f"{key} is significantly worse ({m.lift:+.1f}%, {what} = {p_text})")
        else:
            out.append(f"{key} is significantly worse ({what} = {p_text})")
    return out
