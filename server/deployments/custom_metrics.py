"""Health rules on custom metrics: validation and judgement of one step window (pure).

The sidecar keeps, per variant and window, the sufficient statistics (n, sum, sum of
squares: :class:`~neural.mlops.v1.traffic.Moments`) of every ``x-neural-metric-<name>``
value the model server attaches to its answers. A rollout's ``metric_rules`` judge them
as Argo Rollouts' analysis templates and Flagger's metric templates do:

* THRESHOLD: the new version's mean ``x̄₁`` over the step's window against a limit:
  FAIL when ``x̄₁ > threshold`` (lower is better) or ``x̄₁ < threshold`` (higher is
  better).
* COMPARISON: the new version (1) against the stable (2) on the same window. The relative
  degradation is ``d = (x̄₁ - x̄₂) / |x̄₂|`` (lower is better; ``(x̄₂ - x̄₁) / |x̄₂|`` when
  higher is better; a stable mean of 0 makes any worsening infinite). Welch's t-test
  (Welch, *Biometrika* 34, 1947) with the sample variances ``s²`` (n - 1 denominator)::

      t  = (x̄₁ - x̄₂) / sqrt(s₁²/n₁ + s₂²/n₂)
      df = (s₁²/n₁ + s₂²/n₂)² / ((s₁²/n₁)² / (n₁ - 1) + (s₂²/n₂)² / (n₂ - 1))
      p  = P(T_df > t)   (lower is better: H1 "new is higher")
      p  = P(T_df < t)   (higher is better: H1 "new is lower")

  equal to ``scipy.stats.ttest_ind_from_stats(x̄₁, s₁, n₁, x̄₂, s₂, n₂,
  equal_var=False, alternative="greater" | "less")``. FAIL when ``d > max_degradation``
  and ``p < alpha``: the new version is worse by more than the tolerance, and not by
  chance. With no variance on either side the difference is exact (p = 0 if worse, 1
  otherwise).

A rule with fewer than ``min_samples`` values (on either side for COMPARISON) WAITs. At a
step that gives the stable no traffic (100 %: the last canary step, blue-green after the
switch, DIRECT) there is nothing to compare with: comparisons pass there as "skipped" and
only thresholds judge.
Every rule's measured values go into the check's ``tests["custom_metrics"]``, and
``tests["decided_by"]`` names the rules that failed the check.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from neural.mlops.server import validation as v
from neural.mlops.server.deployments.judge import Judgement
from neural.mlops.server.deployments.model import (
    MetricDirection,
    MetricKind,
    MetricRule,
    Verdict,
)
from neural.mlops.server.errors import InvalidArgument
from neural.mlops.server.experiments.statistics import welch_ttest
from neural.mlops.v1.traffic import Moments, VariantStats

MAX_RULES = 20
MAX_METRIC_NAME = 128
_METRIC_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")


# --- validation ---------------------------------------------------------------------------


def _enum(value: object, enum: type[MetricKind] | type[MetricDirection], field: str) -> Any:
    try:
        return enum(str(value))
    except ValueError:
        raise InvalidArgument(f"{field} must be one of {[e.value for e in enum]}, got {value!r}",
                              field=field) from None


def _metric_name(value: object, field: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_METRIC_NAME:
        raise InvalidArgument(f"{field} must be a metric name of 1-{MAX_METRIC_NAME} characters",
                              field=field)
    if not set(value) <= _METRIC_CHARS:
        raise InvalidArgument(
            f"{field}: {value!r} is not a metric name the sidecar collects (the name in "
            "x-neural-metric-<name>: lower case letters, digits, '-', '_', '.')", field=field)
    return value


def validate_rule(rule: MetricRule, field: str) -> MetricRule:
    """``rule`` checked field by field (InvalidArgument naming ``<field>.<part>``)."""
    if not isinstance(rule, MetricRule):
        raise InvalidArgument(f"{field} must be a MetricRule", field=field)
    kind = _enum(rule.kind, MetricKind, f"{field}.kind")
    out = MetricRule(
        metric=_metric_name(rule.metric, f"{field}.metric"), kind=kind,
        direction=_enum(rule.direction, MetricDirection, f"{field}.direction"),
        min_samples=_count(rule.min_samples, f"{field}.min_samples"),
    )
    if kind is MetricKind.THRESHOLD:
        if rule.threshold is None:
            raise InvalidArgument(f"{field}.threshold is required for a threshold rule",
                                  field=f"{field}.threshold")
        out.threshold = v.finite(rule.threshold, f"{field}.threshold")
        return out
    if rule.threshold is not None:
        raise InvalidArgument(f"{field}.threshold applies to threshold rules only",
                              field=f"{field}.threshold")
    out.max_degradation = v.finite(rule.max_degradation, f"{field}.max_degradation")
    if out.max_degradation < 0:
        raise InvalidArgument(f"{field}.max_degradation must not be negative",
                              field=f"{field}.max_degradation")
    alpha = v.finite(rule.alpha or 0.05, f"{field}.alpha")
    if not 0 < alpha < 1:
        raise InvalidArgument(f"{field}.alpha must be in (0, 1)", field=f"{field}.alpha")
    out.alpha = alpha
    return out


def _count(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgument(f"{field} must be a non-negative integer", field=field)
    return value


def validate_rules(rules: Sequence[MetricRule], field: str) -> list[MetricRule]:
    if len(rules) > MAX_RULES:
        raise InvalidArgument(f"at most {MAX_RULES} metric rules", field=field)
    return [validate_rule(r, f"{field}[{i}]") for i, r in enumerate(rules)]


# --- judgement ----------------------------------------------------------------------------


@dataclass(slots=True)
class RuleResult:
    verdict: Verdict
    reason: str
    values: dict[str, Any]


def _num(x: float) -> float | None:
    return x if math.isfinite(x) else None


def one_sided_welch(new: Moments, stable: Moments, direction: MetricDirection
                    ) -> tuple[float, float, float]:
    """``(t, df, p)`` of the one-sided Welch test of "new is worse" (module docstring)."""
    from scipy import special  # here: scipy costs a process start ~0.4 s
    w = welch_ttest(stable.n, stable.sum, stable.sum_squares, new.n, new.sum, new.sum_squares)
    t, df = float(w.t), float(w.df)
    diff = new.mean - stable.mean
    worse = diff > 0 if direction is MetricDirection.LOWER else diff < 0
    if not math.isfinite(t) or not math.isfinite(df):
        return t, df, 0.0 if worse else 1.0  # no variance: the difference is exact
    upper = float(special.stdtr(df, -t))  # P(T > t)
    return t, df, upper if direction is MetricDirection.LOWER else 1.0 - upper


def _degradation(new_mean: float, stable_mean: float, direction: MetricDirection) -> float:
    worse_by = new_mean - stable_mean if direction is MetricDirection.LOWER else (
        stable_mean - new_mean)
    if stable_mean == 0:
        return math.inf if worse_by > 0 else 0.0
    return worse_by / abs(stable_mean)


def _threshold(rule: MetricRule, m: Moments, need: int, name: str) -> RuleResult:
    values: dict[str, Any] = {"n": m.n, "mean": _num(m.mean) if m.n else None,
                              "threshold": rule.threshold, "min_samples": need}
    if m.n < need:
        return RuleResult(Verdict.WAIT, f"{name}: {m.n} values on the new version, {need} "
                          "needed", values)
    assert rule.threshold is not None
    lower = MetricDirection(rule.direction) is MetricDirection.LOWER
    bad = m.mean > rule.threshold if lower else m.mean < rule.threshold
    op = ">" if lower else "<"
    if bad:
        return RuleResult(Verdict.FAIL, f"{name}: mean {m.mean:.4g} {op} threshold "
                          f"{rule.threshold:.4g} (n={m.n})", values)
    return RuleResult(Verdict.PASS, "", values)


def _comparison(rule: MetricRule, m1: Moments, m2: Moments, need: int, name: str) -> RuleResult:
    direction = MetricDirection(rule.direction)
    values: dict[str, Any] = {
        "n": m1.n, "mean": _num(m1.mean) if m1.n else None, "n_stable": m2.n,
        "mean_stable": _num(m2.mean) if m2.n else None, "min_samples": need,
        "max_degradation": rule.max_degradation, "alpha": rule.alpha,
        "test": "Welch t (one-sided)"}
    if m1.n < need or m2.n < need:
        return RuleResult(Verdict.WAIT, f"{name}: {m1.n} values on the new version and "
                          f"{m2.n} on the stable, {need} needed on each", values)
    t, df, p = one_sided_welch(m1, m2, direction)
    d = _degradation(m1.mean, m2.mean, direction)
    values.update({"t": _num(t), "df": _num(df), "p_value": p, "degradation": _num(d)})
    if d > rule.max_degradation and p < rule.alpha:
        return RuleResult(Verdict.FAIL, (
            f"{name}: mean {m1.mean:.4g} vs stable {m2.mean:.4g} is {_pct(d)} worse "
            f"(tolerated {rule.max_degradation:.1%}), Welch t={t:.3f}, p={p:.3g} "
            f"< {rule.alpha:g}"), values)
    return RuleResult(Verdict.PASS, "", values)


def _pct(d: float) -> str:
    return "infinitely" if math.isinf(d) else f"{d:.1%}"


def evaluate(rules: Sequence[MetricRule], new: VariantStats | None,
             stable: VariantStats | None, default_min: int,
             compare: bool = True) -> list[RuleResult]:
    """Each rule judged on the new version's (and the stable's) window. ``compare=False``
    (a step that gives the stable no traffic, 100 %): comparisons pass as "skipped"."""
    out = []
    for i, rule in enumerate(rules):
        m1 = new.custom.get(rule.metric, Moments()) if new is not None else Moments()
        kind = MetricKind(rule.kind)
        name = f"metric_rules[{i}] {rule.metric} ({kind.value}, {rule.direction} is better)"
        need = rule.min_samples or default_min
        if kind is MetricKind.THRESHOLD:
            res = _threshold(rule, m1, max(need, 1), name)
        elif not compare:
            res = RuleResult(Verdict.PASS, "", {"skipped": "the stable serves no traffic at "
                                                "this step; nothing to compare with"})
        else:
            m2 = stable.custom.get(rule.metric, Moments()) if stable is not None else Moments()
            res = _comparison(rule, m1, m2, max(need, 2), name)
        res.values.update({"rule": i, "metric": rule.metric, "kind": kind.value,
                           "direction": str(rule.direction), "verdict": res.verdict.value})
        out.append(res)
    return out


def apply(j: Judgement, rules: Sequence[MetricRule], new: VariantStats | None,
          stable: VariantStats | None, default_min: int, compare: bool = True) -> Judgement:
    """``j`` with the custom-metric rules folded in: a failing rule fails the check (also
    over a base WAIT: the rule had its own samples), a waiting rule turns a PASS into a
    WAIT; INCONCLUSIVE stays. ``compare`` as in :func:`evaluate`."""
    if not rules:
        return j
    results = evaluate(rules, new, stable, default_min, compare)
    j.tests["custom_metrics"] = [r.values for r in results]
    failed = [r for r in results if r.verdict is Verdict.FAIL]
    if failed:
        j.tests["decided_by"] = [f"metric_rules[{r.values['rule']}]" for r in failed]
        reasons = [r.reason for r in failed]
        kept = j.reasons if j.verdict is Verdict.FAIL else []
        return Judgement(Verdict.FAIL, kept + reasons, j.new, j.stable, j.tests)
    waiting = [r.reason for r in results if r.verdict is Verdict.WAIT]
    if waiting and j.verdict is Verdict.PASS:
        return Judgement(Verdict.WAIT, waiting, j.new, j.stable, j.tests)
    return j


def skipped(j: Judgement, rules: Sequence[MetricRule], why: str) -> Judgement:
    """``j`` with a note that the rules were not judged (manual metrics, mirrored preview)."""
    if rules:
        j.tests["custom_metrics_note"] = why
    return j


# --- text form (the CLI's --metric-rule) --------------------------------------------------

_OPTIONS = {"min": "min_samples", "max-degradation": "max_degradation", "alpha": "alpha"}


def _options(words: list[str], text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for w in words:
        key, eq, value = w.partition("=")
        if not eq or key not in _OPTIONS:
            raise InvalidArgument(f"metric rule {text!r}: unknown option {w!r} (min=N, "
                                  "max-degradation=D, alpha=A)", field="metric_rules")
        try:
            out[_OPTIONS[key]] = float(value)
        except ValueError:
            raise InvalidArgument(f"metric rule {text!r}: {key} needs a number, got {value!r}",
                                  field="metric_rules") from None
    return out


def parse_rule(text: str) -> MetricRule:
    """A rule from its text form: ``NAME <= X`` / ``NAME >= X`` (a threshold; ``<=`` means
    lower is better) or ``NAME lower|higher vs stable`` (a comparison), each followed by
    options ``min=N``, ``max-degradation=D`` (comparison), ``alpha=A`` (comparison)."""
    words = text.split()
    if len(words) >= 3 and words[1] in ("<=", ">="):
        opts = _options(words[3:], text)
        if opts.keys() - {"min_samples"}:
            raise InvalidArgument(f"metric rule {text!r}: max-degradation and alpha apply to "
                                  "comparisons ('NAME lower|higher vs stable')",
                                  field="metric_rules")
        try:
            threshold = float(words[2])
        except ValueError:
            raise InvalidArgument(f"metric rule {text!r}: the threshold must be a number",
                                  field="metric_rules") from None
        rule = MetricRule(words[0], MetricKind.THRESHOLD,
                          MetricDirection.LOWER if words[1] == "<=" else MetricDirection.HIGHER,
                          threshold=threshold)
    elif len(words) >= 4 and words[1] in ("lower", "higher") and words[2:4] == ["vs", "stable"]:
        opts = _options(words[4:], text)
        rule = MetricRule(words[0], MetricKind.COMPARISON, MetricDirection(words[1]),
                          max_degradation=opts.get("max_degradation", 0.0),
                          alpha=opts.get("alpha", 0.05))
    else:
        raise InvalidArgument(
            f"metric rule {text!r} is not 'NAME <= X', 'NAME >= X' or 'NAME lower|higher vs "
            "stable' (then options min=N, max-degradation=D, alpha=A)", field="metric_rules")
    n = opts.get("min_samples", 0.0)
    if not n.is_integer():
        raise InvalidArgument(f"metric rule {text!r}: min must be an integer",
                              field="metric_rules")
    rule.min_samples = int(n)
    return rule


def rule_text(rule: MetricRule) -> str:
    """The text form of a rule (:func:`parse_rule` reads it back)."""
    if MetricKind(rule.kind) is MetricKind.THRESHOLD:
        op = "<=" if MetricDirection(rule.direction) is MetricDirection.LOWER else ">="
        text = f"{rule.metric} {op} {rule.threshold:g}"
    else:
        text = (f"{rule.metric} {MetricDirection(rule.direction).value} vs stable "
                f"max-degradation={rule.max_degradation:g} alpha={rule.alpha:g}")
    return text + (f" min={rule.min_samples}" if rule.min_samples else "")
