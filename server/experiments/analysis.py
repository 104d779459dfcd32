"""``analyze_test``: one JSON-safe report from the summed statistics of each variant.

Pure function of the per-variant :class:`~neural.mlops.v1.traffic.VariantStats` totals
and the experiment's configuration, so it costs the same at a thousand or a billion
requests. Nothing here raises on degenerate data: a quantity that is undefined (an empty
arm, zero variance, all successes) is ``None`` and ``warnings`` says why. No NaN or
infinity ever reaches the result.

Keys (two variants ``control`` / ``treatment``; with more, every non-control variant is
compared with control under ``comparisons`` and the top-level keys describe the best one):

* ``control``, ``treatment`` (and ``variants``: every variant by name): ``n``,
  ``successes``, ``success_rate``, ``errors``, ``error_rate``, ``weight``,
  ``latency`` {``n``, ``mean``, ``std``, ``p50``, ``p95``, ``p99``},
  ``custom_metrics`` {name: {``n``, ``mean``, ``std``}}.
* ``p_value``, ``z_score``, ``statistically_significant``: pooled two-proportion z-test.
* ``improvement``: ``absolute``, ``relative_improvement`` (PERCENT),
  ``confidence_interval`` (of the absolute difference).
* ``metrics``: Welch t-tests for latency and every custom metric, and the two-proportion
  z-test of the error rate when errors were recorded (``p_value``, ``p_value_adjusted`` by
  Holm across them, ``confidence_interval``, ``lift`` percent).
* ``srm``, ``power``, ``sequential``, ``bayesian``, ``recommendation`` (``action``,
  ``winner``, ``reason``, ``guardrails``: latency or error rate significantly worse),
  ``warnings``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from neural.mlops.server.experiments import bayes, sequential, statistics
from neural.mlops.v1.traffic import VariantStats

DECISION_FIXED = "fixed_horizon"
DECISION_SEQUENTIAL = "sequential"
SRM_THRESHOLD = 0.001


@dataclass(frozen=True, slots=True)
class AnalysisConfig:
    """How a test is judged; fixed when the test is created."""

    confidence_level: float = 0.95
    minimum_detectable_effect: float = 0.05  # relative lift of the success rate (0.05 = 5%)
    power: float = 0.8
    decision_rule: str = DECISION_FIXED  # or DECISION_SEQUENTIAL
    sequential_tau: float = sequential.DEFAULT_TAU
    srm_threshold: float = SRM_THRESHOLD


class _Warnings(list[str]):
    def add(self, message: str) -> None:
        if message not in self:
            self.append(message)


def _num(x: Any, warnings: _Warnings | None = None, what: str = "") -> float | None:
    """A finite float, or None (with a warning naming ``what``)."""
    if x is None:
        return None
    v = float(x)
    if math.isfinite(v):
        return v
    if warnings is not None and what:
        warnings.add(f"{what} is undefined for this data")
    return None


def _pct(x: float | None) -> float | None:
    return None if x is None else x * 100.0


def _variant_summary(name: str, weight: float, s: VariantStats) -> dict[str, Any]:
    lat = s.latency
    return {
        "name": name,
        "weight": weight,
        "n": s.count,
        "successes": s.successes,
        "success_rate": s.success_rate,
        "errors": s.errors,
        "error_rate": s.error_rate,
        "latency": {
            "n": lat.count,
            "mean": _num(lat.mean),
            "std": _num(lat.std) if lat.count > 1 else None,
            "p50": _num(lat.quantile(0.5)),
            "p95": _num(lat.quantile(0.95)),
            "p99": _num(lat.quantile(0.99)),
        },
        "custom_metrics": {
            k: {"n": m.n, "mean": m.mean if m.n else None, "std": m.std if m.n > 1 else None}
            for k, m in sorted(s.custom.items())
        },
        "status_codes": dict(sorted(s.status_codes.items())),
    }


def _proportion(
    c: VariantStats, t: VariantStats, conf: float, warnings: _Warnings, label: str
) -> dict[str, Any]:
    res = statistics.two_proportion_ztest(c.successes, c.count, t.successes, t.count, conf)
    lo, hi = statistics.ratio_ci_log(c.successes, c.count, t.successes, t.count, conf)
    p = _num(res.p_value, warnings, f"p-value of the success rate ({label})")
    diff = _num(res.difference)
    rel = _num(res.relative, warnings, f"relative improvement ({label}: control rate is 0)")
    return {
        "p_value": p,
        "z_score": _num(res.z),
        "statistically_significant": bool(p is not None and p < 1.0 - conf),
        "improvement": {
            "absolute": diff,
            "relative_improvement": _pct(rel),
            "confidence_interval": [_num(res.ci_low), _num(res.ci_high)],
            # Katz log interval of the rate ratio, minus 1, in percent.
            "relative_confidence_interval": [_pct(_num(lo - 1.0)), _pct(_num(hi - 1.0))],
        },
    }


def _welch(
    n_c: int, s_c: float, q_c: float, n_t: int, s_t: float, q_t: float, conf: float
) -> dict[str, Any]:
    res = statistics.welch_ttest(n_c, s_c, q_c, n_t, s_t, q_t, conf)
    return {
        "control_mean": _num(res.mean_control),
        "treatment_mean": _num(res.mean_treatment),
        "difference": _num(res.difference),
        "t_statistic": _num(res.t),
        "df": _num(res.df),
        "p_value": _num(res.p_value),
        "confidence_interval": [_num(res.ci_low), _num(res.ci_high)],
        "lift": _pct(_num(res.relative)),
        "n_control": n_c,
        "n_treatment": n_t,
    }


def _metrics(
    c: VariantStats, t: VariantStats, conf: float, warnings: _Warnings, label: str
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if c.latency.count or t.latency.count:
        out["latency"] = _welch(
            c.latency.count, c.latency.sum, c.latency.sum_squares,
            t.latency.count, t.latency.sum, t.latency.sum_squares, conf,
        )
    if c.errors or t.errors:
        err = statistics.two_proportion_ztest(c.errors, c.count, t.errors, t.count, conf)
        out["error_rate"] = {
            "control_mean": _num(err.rate_control),
            "treatment_mean": _num(err.rate_treatment),
            "difference": _num(err.difference),
            "z_score": _num(err.z),
            "p_value": _num(err.p_value),
            "confidence_interval": [_num(err.ci_low), _num(err.ci_high)],
            "lift": _pct(_num(err.relative)),
            "n_control": c.count,
            "n_treatment": t.count,
        }
    for name in sorted(set(c.custom) | set(t.custom)):
        mc = c.custom.get(name)
        mt = t.custom.get(name)
        key = f"custom:{name}" if name in ("latency", "error_rate") else name
        out[key] = _welch(
            mc.n if mc else 0, mc.sum if mc else 0.0, mc.sum_squares if mc else 0.0,
            mt.n if mt else 0, mt.sum if mt else 0.0, mt.sum_squares if mt else 0.0, conf,
        )
    adjusted = statistics.holm([np.nan if m["p_value"] is None else m["p_value"] for m in out.values()])
    for (name, m), adj in zip(out.items(), adjusted, strict=True):
        m["p_value_adjusted"] = _num(adj)
        m["statistically_significant"] = bool(m["p_value_adjusted"] is not None and adj < 1.0 - conf)
        if m["p_value"] is None:
            warnings.add(f"metric {name!r} ({label}): needs >= 2 values with nonzero variance per arm")
    return out


def _sequential(
    c: VariantStats,
    t: VariantStats,
    alpha: float,
    tau: float,
    warnings: _Warnings,
    floor: float | None = None,
) -> dict[str, Any]:
    """``p_value`` is the always-valid p-value: the running minimum of the mixture p-value
    over every look the store has recorded (``floor``) and this one."""
    res = sequential.msprt_proportions(c.successes, c.count, t.successes, t.count, alpha, tau)
    current = _num(res.p_value)
    if current is None:
        warnings.add("sequential test undefined (an arm is empty or the success rate is 0% or 100%)")
    candidates = [x for x in (current, floor) if x is not None]
    p = min(candidates) if candidates else None
    return {
        "method": "mSPRT (normal mixture; Johari et al., KDD 2017)",
        "tau": tau,
        "p_value": p,
        "p_value_current": current,
        "statistically_significant": bool(p is not None and p <= alpha),
        "confidence_sequence": [_num(res.ci_low), _num(res.ci_high)],
    }


def _bayesian(c: VariantStats, t: VariantStats) -> dict[str, Any]:
    if c.count == 0 or t.count == 0:
        return {
            "prior": "Beta(1, 1)",
            "chance_to_beat_control": None,
            "expected_loss": {"ship_treatment": None, "keep_control": None},
        }
    res = bayes.beta_compare(
        min(c.successes, c.count), c.count, min(t.successes, t.count), t.count
    )
    return {
        "prior": "Beta(1, 1)",
        "chance_to_beat_control": _num(res.chance_to_beat_control),
        "expected_loss": {
            "ship_treatment": _num(res.expected_loss_ship_treatment),
            "keep_control": _num(res.expected_loss_keep_control),
        },
    }


def _power(
    control: VariantStats,
    weights: Mapping[str, float],
    totals: Mapping[str, VariantStats],
    control_name: str,
    treatment_name: str,
    cfg: AnalysisConfig,
    alpha: float,
    elapsed_seconds: float | None,
    warnings: _Warnings,
) -> dict[str, Any]:
    mde = cfg.minimum_detectable_effect
    base = control.success_rate
    out: dict[str, Any] = {
        "minimum_detectable_effect": mde,
        "target_power": cfg.power,
        "baseline_rate": base,
        "target_rate": None,
        "effect_size_h": None,
        "required_per_arm": None,
        "required_total": None,
        "observed_total": sum(s.count for s in totals.values()),
        "progress": None,
        "achieved_power": None,
        "requests_per_second": None,
        "estimated_seconds_remaining": None,
    }
    w_c, w_t = weights.get(control_name, 0.0), weights.get(treatment_name, 0.0)
    if base is None or base <= 0.0 or base >= 1.0 or w_c <= 0 or w_t <= 0:
        warnings.add("sample size needs a control success rate strictly between 0% and 100%")
        return out
    target = min(base * (1.0 + mde), 1.0)
    h = statistics.cohens_h(target, base)
    ratio = w_t / w_c
    n_c = statistics.sample_size_two_proportions(h, ratio, alpha, cfg.power)
    if not math.isfinite(n_c):
        return out
    n_c_req = math.ceil(n_c)
    n_t_req = math.ceil(n_c * ratio)
    # Whole-test traffic needed so that both arms reach their size at the configured split.
    required_total = math.ceil(max(n_c_req / w_c, n_t_req / w_t) * sum(weights.values()))
    observed = out["observed_total"]
    c_n = control.count
    t_n = totals.get(treatment_name, VariantStats()).count
    out.update(
        target_rate=target,
        effect_size_h=h,
        required_per_arm={control_name: n_c_req, treatment_name: n_t_req},
        required_total=required_total,
        progress=min(min(c_n / n_c_req, t_n / n_t_req), 1.0),
    )
    if c_n > 0 and t_n > 0:
        out["achieved_power"] = statistics.power_two_proportions(h, c_n, t_n / c_n, alpha)
    if elapsed_seconds and elapsed_seconds > 0 and observed > 0:
        rate = observed / elapsed_seconds
        out["requests_per_second"] = rate
        out["estimated_seconds_remaining"] = max(required_total - observed, 0) / rate
    return out


def _recommend(
    top: dict[str, Any],
    srm: dict[str, Any],
    power: dict[str, Any],
    cfg: AnalysisConfig,
    control_name: str,
    treatment_name: str,
    n_c: int,
    n_t: int,
) -> dict[str, Any]:
    if srm["detected"]:
        return {
            "action": "stop",
            "winner": None,
            "reason": (
                f"sample ratio mismatch (chi-square p = {srm['p_value']:.2g} < "
                f"{cfg.srm_threshold}): the observed split differs from the configured one, "
                "so the comparison is not trustworthy; fix the assignment and restart"
            ),
        }
    if n_c == 0 or n_t == 0:
        return {"action": "keep_running", "winner": None, "reason": "an arm has no traffic yet"}
    diff = top["improvement"]["absolute"] or 0.0
    if cfg.decision_rule == DECISION_SEQUENTIAL:
        seq = top["sequential"]
        if seq["statistically_significant"]:
            win = diff > 0
            return {
                "action": "ship_treatment" if win else "keep_control",
                "winner": treatment_name if win else control_name,
                "reason": (
                    f"always-valid p = {seq['p_value']:.3g} <= {1 - cfg.confidence_level:.3g}; "
                    f"{treatment_name} is {'better' if win else 'worse'} than {control_name}"
                ),
            }
        return {
            "action": "keep_running",
            "winner": None,
            "reason": f"always-valid p = {seq['p_value'] if seq['p_value'] is not None else 'n/a'}; "
            "not yet conclusive (peeking is safe with the sequential rule)",
        }
    reached = power["progress"] is not None and power["progress"] >= 1.0
    p = top["p_value"]
    if not reached:
        needed = power["required_total"]
        return {
            "action": "keep_running",
            "winner": None,
            "reason": (
                f"planned sample size not reached ({power['observed_total']} of {needed} requests); "
                "a fixed-horizon test must not be decided early"
                if needed
                else "the sample size cannot be planned yet (no baseline success rate)"
            ),
        }
    if top["statistically_significant"]:
        win = diff > 0
        return {
            "action": "ship_treatment" if win else "keep_control",
            "winner": treatment_name if win else control_name,
            "reason": f"p = {p:.3g} at the planned sample size; {treatment_name} is "
            f"{'better' if win else 'worse'} than {control_name}",
        }
    return {
        "action": "keep_control",
        "winner": control_name,
        "reason": f"planned sample size reached and no significant difference (p = "
        f"{p if p is None else round(p, 4)}); keep {control_name}",
    }


def analyze(
    variants: Sequence[tuple[str, float]],
    totals: Mapping[str, VariantStats],
    *,
    control: str,
    config: AnalysisConfig | None = None,
    confidence_level: float | None = None,
    elapsed_seconds: float | None = None,
    sequential_floor: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The analysis report (see the module docstring for its keys). ``sequential_floor``
    holds, per variant, the smallest mSPRT p-value of earlier looks (kept by the store)."""
    cfg = config or AnalysisConfig()
    conf = cfg.confidence_level if confidence_level is None else confidence_level
    alpha = round(1.0 - conf, 12)
    warnings = _Warnings()
    weights = {name: w for name, w in variants}
    stats = {name: totals.get(name, VariantStats()) for name, _ in variants}
    for name in totals:
        if name not in stats:
            warnings.add(f"traffic recorded for unknown variant {name!r} is ignored")
    summaries = {name: _variant_summary(name, weights[name], stats[name]) for name in stats}
    for name, s in stats.items():
        if s.count == 0:
            warnings.add(f"variant {name!r} has no requests")
        if s.successes > s.count:
            warnings.add(f"variant {name!r} has more successes than requests (late outcomes)")
        rate = s.success_rate
        if rate is not None and rate in (0.0, 1.0) and s.count > 0:
            warnings.add(f"variant {name!r} has a success rate of {rate:.0%}")
    c = stats[control]
    comparisons: dict[str, dict[str, Any]] = {}
    for name in stats:
        if name == control:
            continue
        t = stats[name]
        label = f"{name} vs {control}"
        comp = _proportion(c, t, conf, warnings, label)
        comp["sequential"] = _sequential(
            c, t, alpha, cfg.sequential_tau, warnings, (sequential_floor or {}).get(name)
        )
        comp["bayesian"] = _bayesian(c, t)
        comp["metrics"] = _metrics(c, t, conf, warnings, label)
        comparisons[name] = comp
    names = list(comparisons)
    adjusted = statistics.holm([np.nan if comparisons[n]["p_value"] is None else comparisons[n]["p_value"] for n in names])
    for n, adj in zip(names, adjusted, strict=True):
        comparisons[n]["p_value_adjusted"] = _num(adj)
        if len(names) > 1:
            comparisons[n]["statistically_significant"] = bool(_num(adj) is not None and adj < alpha)
    if "treatment" in comparisons:
        best = "treatment"
    else:
        best = max(names, key=lambda n: stats[n].success_rate or 0.0) if names else control
    srm_res = statistics.srm_chisquare([stats[n].count for n in stats], [weights[n] for n in stats])
    srm_p = _num(srm_res.p_value)
    srm = {
        "chi_square": _num(srm_res.statistic),
        "df": srm_res.df,
        "p_value": srm_p,
        "detected": bool(srm_p is not None and srm_p < cfg.srm_threshold),
        "threshold": cfg.srm_threshold,
        "expected_shares": dict(weights),
        "observed_counts": {n: stats[n].count for n in stats},
    }
    top = comparisons.get(best) or {
        "p_value": None,
        "z_score": None,
        "statistically_significant": False,
        "improvement": {
            "absolute": None,
            "relative_improvement": None,
            "confidence_interval": [None, None],
            "relative_confidence_interval": [None, None],
        },
        "sequential": None,
        "bayesian": None,
        "metrics": {},
    }
    power = _power(c, weights, stats, control, best, cfg, alpha, elapsed_seconds, warnings)
    rec = (
        _recommend(top, srm, power, cfg, control, best, c.count, stats[best].count)
        if best != control
        else {"action": "keep_running", "winner": None, "reason": "no treatment variant"}
    )
    # Guardrails: latency and error rate must not get significantly worse (Holm-adjusted).
    guardrails = [
        f"{key} is significantly worse ({m['lift']:+.1f}%, adjusted p = {m['p_value_adjusted']:.3g})"
        if m.get("lift") is not None
        else f"{key} is significantly worse (adjusted p = {m['p_value_adjusted']:.3g})"
        for key, m in top["metrics"].items()
        if key in ("latency", "error_rate") and m["statistically_significant"] and (m["difference"] or 0) > 0
    ]
    rec["guardrails"] = guardrails
    if guardrails and rec["action"] == "ship_treatment":
        rec["reason"] += "; guardrail warning: " + "; ".join(guardrails) + " - review before shipping"
    report: dict[str, Any] = {
        "confidence_level": conf,
        "alpha": alpha,
        "decision_rule": cfg.decision_rule,
        "control_variant": control,
        "compared_variant": best,
        "variants": summaries,
        "p_value": top["p_value"],
        "z_score": top["z_score"],
        "statistically_significant": top["statistically_significant"],
        "improvement": top["improvement"],
        "metrics": top["metrics"],
        "srm": srm,
        "power": power,
        "sequential": top["sequential"],
        "bayesian": top["bayesian"],
        "comparisons": comparisons,
        "recommendation": rec,
        "warnings": list(warnings),
    }
    for name, summary in summaries.items():
        if name not in report:
            report[name] = summary
    if "control" not in report:
        report["control"] = summaries[control]
    if "treatment" not in report and best in summaries:
        report["treatment"] = summaries[best]
    return report
