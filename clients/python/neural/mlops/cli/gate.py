"""``neural-mlops gate``: may a candidate model version proceed towards production?

The candidate's metrics (a registered version, or a JSON file from an evaluation run
that has not registered anything yet) are checked against absolute limits
(``--min``, ``--max``) and against the version currently in PRODUCTION
(``--max-regression`` for metrics where higher is better, ``--max-increase`` for those
where lower is better; ``0.01`` is absolute, ``1%`` is relative to production).

Exit status: 0 when every check passes, 1 when the gate says no (each failing check is
printed with its reason), 2 for unusable input (bad option, unreadable metrics file),
3 when the model or a version does not exist. A metric a check needs but the candidate
(or production) lacks is a failed check, never a silent pass. With no PRODUCTION version
yet, regression checks are skipped and reported as such unless ``--require-baseline``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neural.mlops.ci_templates import METRIC_NAME
from neural.mlops.cli._output import add_common, emit, print_table
from neural.mlops.server.errors import InvalidArgument, NotFound

EXIT_PASS = 0
EXIT_FAIL = 1


@dataclass(frozen=True)
class Threshold:
    metric: str
    value: float
    relative: bool = False  # value is a fraction of the baseline ("1%" -> 0.01)

    def describe(self) -> str:
        return f"{self.value * 100:g}%" if self.relative else f"{self.value:g}"


@dataclass(frozen=True)
class Check:
    kind: str  # min | max | max-regression | max-increase
    metric: str
    candidate: float | None
    baseline: float | None
    limit: float | None
    passed: bool | None  # None: skipped (no baseline)
    reason: str


@dataclass
class GateResult:
    model: str
    candidate: str
    baseline: str | None
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed is not False for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.passed is False]

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "candidate": self.candidate,
            "baseline": self.baseline,
            "passed": self.passed,
            "reasons": [c.reason for c in self.failures],
            "checks": [c.__dict__ for c in self.checks],
        }


def parse_specs(values: list[str] | None, option: str, *, allow_relative: bool) -> list[Threshold]:
    """``["accuracy=0.9,f1=0.8", "loss=2%"]`` -> thresholds; InvalidArgument naming ``option``."""
    out: list[Threshold] = []
    for chunk in values or []:
        for part in (p.strip() for p in chunk.split(",")):
            if not part:
                continue
            metric, sep, raw = part.partition("=")
            metric, raw = metric.strip(), raw.strip()
            if not sep or not metric or not raw:
                raise InvalidArgument(
                    f"{option}: expected METRIC=VALUE, got {part!r}", field=option
                )
            if not METRIC_NAME.match(metric):
                raise InvalidArgument(f"{option}: invalid metric name {metric!r}", field=option)
            relative = raw.endswith("%")
            if relative and not allow_relative:
                raise InvalidArgument(
                    f"{option}: {metric}: a percentage only makes sense "
                    "relative to production (--max-regression/--max-increase)",
                    field=option,
                )
            try:
                value = float(raw[:-1] if relative else raw)
            except ValueError:
                raise InvalidArgument(
                    f"{option}: {metric} needs a number, got {raw!r}", field=option
                ) from None
            if not math.isfinite(value):
                raise InvalidArgument(f"{option}: {metric} must be finite", field=option)
            if allow_relative and value < 0:
                raise InvalidArgument(f"{option}: {metric} must be >= 0, got {raw}", field=option)
            out.append(Threshold(metric, value / 100 if relative else value, relative))
    return out


def read_metrics_file(path: Path) -> dict[str, float]:
    """A JSON object of metric -> number (or ``{"metrics": {...}}``); other entries ignored."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidArgument(
            f"--candidate-metrics: no such file: {path}", field="candidate_metrics"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidArgument(
            f"--candidate-metrics: cannot read {path}: {exc}", field="candidate_metrics"
        ) from None
    if isinstance(data, dict) and isinstance(data.get("metrics"), dict):
        data = data["metrics"]
    if not isinstance(data, dict):
        raise InvalidArgument(
            f"--candidate-metrics: {path} must hold a JSON object of metric: number",
            field="candidate_metrics",
        )
    return {
        str(k): float(v)
        for k, v in data.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    }


def _missing(who: str, metric: str, have: dict[str, float]) -> str:
    known = ", ".join(sorted(have)) or "none"
    return f"{who} has no metric {metric!r} (it has: {known})"


def evaluate(
    model: str,
    candidate_label: str,
    candidate: dict[str, float],
    baseline_label: str | None,
    baseline: dict[str, float] | None,
    *,
    minimum: Sequence[Threshold] = (),
    maximum: Sequence[Threshold] = (),
    max_regression: Sequence[Threshold] = (),
    max_increase: Sequence[Threshold] = (),
    require_baseline: bool = False,
) -> GateResult:
    """Pure decision: every check, with a sentence a person can act on."""
    result = GateResult(model, candidate_label, baseline_label)
    cand_who = f"candidate {candidate_label}"
    for kind, specs in (("min", minimum), ("max", maximum)):
        for t in specs:
            value = candidate.get(t.metric)
            if value is None:
                result.checks.append(
                    Check(
                        kind,
                        t.metric,
                        None,
                        None,
                        t.value,
                        False,
                        _missing(cand_who, t.metric, candidate),
                    )
                )
                continue
            ok = value >= t.value if kind == "min" else value <= t.value
            op = ">=" if kind == "min" else "<="
            bound = "below the minimum" if kind == "min" else "above the maximum"
            reason = (
                f"{t.metric} = {value:g} {op} {t.value:g}"
                if ok
                else f"{t.metric} = {value:g} is {bound} {t.value:g}"
            )
            result.checks.append(Check(kind, t.metric, value, None, t.value, ok, reason))
    for kind, specs in (("max-regression", max_regression), ("max-increase", max_increase)):
        for t in specs:
            value = candidate.get(t.metric)
            if baseline is None:
                passed = False if require_baseline else None
                why = (
                    "no PRODUCTION version to compare with (--require-baseline)"
                    if require_baseline
                    else "skipped: no PRODUCTION version yet"
                )
                result.checks.append(
                    Check(kind, t.metric, value, None, None, passed, f"{t.metric}: {why}")
                )
                continue
            base = baseline.get(t.metric)
            if value is None or base is None:
                who, have = (
                    (cand_who, candidate)
                    if value is None
                    else (f"production {baseline_label}", baseline)
                )
                result.checks.append(
                    Check(kind, t.metric, value, base, None, False, _missing(who, t.metric, have))
                )
                continue
            allowed = abs(base) * t.value if t.relative else t.value
            if kind == "max-regression":
                limit, ok = base - allowed, value >= base - allowed
                moved = base - value
                word = "drops"
            else:
                limit, ok = base + allowed, value <= base + allowed
                moved = value - base
                word = "rises"
            reason = (
                f"{t.metric} {value:g} vs production {base:g}: within {t.describe()}"
                if ok
                else f"{t.metric} {word} by {moved:g} (from {base:g} in production to {value:g}), "
                f"more than the allowed {t.describe()}"
            )
            result.checks.append(Check(kind, t.metric, value, base, limit, ok, reason))
    return result


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "gate",
        help="check a candidate's metrics against limits and the PRODUCTION version",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, help="registered model name")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--candidate", metavar="VERSION", help="a registered version to check")
    which.add_argument(
        "--candidate-metrics",
        metavar="FILE",
        type=Path,
        help="JSON file of metric: number from an evaluation (nothing registered yet)",
    )
    p.add_argument(
        "--min",
        action="append",
        metavar="METRIC=VALUE",
        help="candidate metric must be >= VALUE (repeat, or comma-separate)",
    )
    p.add_argument(
        "--max",
        action="append",
        metavar="METRIC=VALUE",
        help="candidate metric must be <= VALUE (e.g. latency_p95=0.05)",
    )
    p.add_argument(
        "--max-regression",
        action="append",
        metavar="METRIC=DELTA[%]",
        help="higher-is-better metric may drop at most DELTA below production",
    )
    p.add_argument(
        "--max-increase",
        action="append",
        metavar="METRIC=DELTA[%]",
        help="lower-is-better metric may rise at most DELTA above production",
    )
    p.add_argument(
        "--baseline",
        metavar="VERSION",
        help="compare with this version instead of the current PRODUCTION one",
    )
    p.add_argument(
        "--require-baseline",
        action="store_true",
        help="fail regression checks when there is no PRODUCTION version",
    )
    p.add_argument(
        "--token",
        default=os.environ.get("NEURAL_MLOPS_TOKEN"),
        help="API token (env NEURAL_MLOPS_TOKEN)",
    )
    add_common(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from neural.mlops.registry import ModelRegistry

    minimum = parse_specs(args.min, "--min", allow_relative=False)
    maximum = parse_specs(args.max, "--max", allow_relative=False)
    regression = parse_specs(args.max_regression, "--max-regression", allow_relative=True)
    increase = parse_specs(args.max_increase, "--max-increase", allow_relative=True)
    if not (minimum or maximum or regression or increase):
        raise InvalidArgument(
            "give at least one check: --min, --max, --max-regression or --max-increase", field="min"
        )
    file_metrics = read_metrics_file(args.candidate_metrics) if args.candidate_metrics else None

    with ModelRegistry(args.target, token=args.token) as registry:
        if file_metrics is not None:
            candidate_label, candidate = str(args.candidate_metrics), file_metrics
        else:
            mv = registry.get_model_version(args.model, args.candidate)
            candidate_label, candidate = mv.version, dict(mv.metrics)
        baseline_label: str | None = None
        baseline: dict[str, float] | None = None
        if args.baseline:
            bv = registry.get_model_version(args.model, args.baseline)
            baseline_label, baseline = bv.version, dict(bv.metrics)
        else:
            try:
                prod = registry.get_production_version(args.model)
            except NotFound:
                if file_metrics is None:
                    raise
                prod = None  # a model's first release: nothing registered under its name yet
            if prod is not None:
                baseline_label, baseline = prod.version, dict(prod.metrics)

    result = evaluate(
        args.model,
        candidate_label,
        candidate,
        baseline_label,
        baseline,
        minimum=minimum,
        maximum=maximum,
        max_regression=regression,
        max_increase=increase,
        require_baseline=args.require_baseline,
    )

    def render() -> None:
        vs = f"production {baseline_label}" if baseline_label else "no production version"
        if args.baseline:
            vs = f"baseline {baseline_label}"
        print(f"gate {args.model}: candidate {candidate_label} vs {vs}")
        print_table(
            ["check", "metric", "candidate", "baseline", "limit", "result"],
            [
                [
                    c.kind,
                    c.metric,
                    c.candidate,
                    c.baseline,
                    c.limit,
                    "skip" if c.passed is None else ("pass" if c.passed else "FAIL"),
                ]
                for c in result.checks
            ],
        )
        if result.passed:
            print(f"PASS: {args.model} {candidate_label} may proceed")

    emit(args, result.as_dict(), render)
    if not result.passed:
        for c in result.failures:
            print(f"gate failed: {c.reason}", file=sys.stderr)
        return EXIT_FAIL
    return EXIT_PASS
