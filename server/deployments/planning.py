"""Planning: a deployment request checked field by field and turned into a rollout plan.

Everything here is pure: a :class:`CreateSpec` goes in, a :class:`ValidSpec` (or an
:class:`InvalidArgument` naming the offending field) comes out, before any transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from neural.mlops.server import validation as v
from neural.mlops.server.deployments.custom_metrics import validate_rules
from neural.mlops.server.deployments.model import (
    DEFAULT_CANARY_STEPS,
    DeploymentStrategy,
    PerformanceMetrics,
    PreviewMode,
    RollbackConfig,
    RolloutPlan,
)
from neural.mlops.server.deployments.upstreams import check_upstream
from neural.mlops.server.errors import InvalidArgument
from neural.mlops.v1 import targeting as tg
from neural.mlops.v1.upstream import UpstreamAllowList

MAX_STEPS = 20
MIN_INTERVAL = 0.01
MAX_DURATION = 30 * 24 * 3600.0
REASON_LIMIT = 4096

# Strategies whose steps are fixed; a caller may repeat them but not change them.
_FIXED_STEPS = {
    DeploymentStrategy.DIRECT: [100.0],
    DeploymentStrategy.BLUE_GREEN: [0.0, 100.0],
    DeploymentStrategy.SHADOW: [0.0],
}


@dataclass(slots=True)
class CreateSpec:
    model_name: str
    model_version: str
    strategy: DeploymentStrategy = DeploymentStrategy.CANARY
    created_by: str = ""
    baseline_metrics: PerformanceMetrics = field(default_factory=PerformanceMetrics)
    rollback_config: RollbackConfig = field(default_factory=RollbackConfig)
    steps: list[float] | None = None
    step_duration_seconds: float = 300.0
    analysis_interval_seconds: float = 60.0
    preview: PreviewMode | str = PreviewMode.MIRROR
    mirror_percentage: float = 100.0
    # blue-green: blue kept ready this long after the switch
    switch_back_seconds: float | None = None
    stable_version: str | None = None  # None: the model's current version
    upstream: str = ""  # HOST:PORT serving the new version ("" = the sidecar's upstream)
    override_reason: str = ""  # deploy without the registry gate (audited)
    # Conditions as text ("x-country in [DE, FR]") or targeting_pb2.Condition, ANDed.
    targeting: Sequence[str | tg.Condition] = ()
    # (header, value, variant): a request with that header value goes to that variant.
    header_routes: Sequence[tuple[str, str, str]] = ()


@dataclass(frozen=True, slots=True)
class ValidSpec:
    """A :class:`CreateSpec` whose every field passed validation."""

    name: str
    version: str
    actor: str
    strategy: DeploymentStrategy
    baseline: PerformanceMetrics
    rollback: RollbackConfig
    plan: RolloutPlan
    stable_given: str
    upstream: str
    override: str
    targeting: tuple[str, ...] = ()
    header_routes: tuple[tuple[str, str, str], ...] = ()


def validate_spec(spec: CreateSpec, allowed: UpstreamAllowList | None = None) -> ValidSpec:
    """Check every field of ``spec``; the first bad one raises InvalidArgument. ``allowed``:
    the control plane's upstream patterns (None or empty: any well-formed HOST:PORT)."""
    name = v.name(spec.model_name, "model_name")
    version = v.name(spec.model_version, "model_version")
    actor = v.actor(spec.created_by, "created_by")
    try:
        strategy = DeploymentStrategy(spec.strategy)
    except ValueError:
        raise InvalidArgument(
            f"strategy must be one of {[s.value for s in DeploymentStrategy]}", field="strategy"
        ) from None
    baseline = validate_metrics(spec.baseline_metrics, "baseline_metrics")
    rollback = validate_rollback(spec.rollback_config)
    plan = plan_for(strategy, spec.steps, spec.step_duration_seconds,
                    spec.analysis_interval_seconds, spec.preview, spec.mirror_percentage,
                    spec.switch_back_seconds)
    stable_given = spec.stable_version or ""
    if stable_given:
        v.name(stable_given, "stable_version")
        if stable_given == version:
            raise InvalidArgument("stable_version must differ from model_version",
                                  field="stable_version")
    return ValidSpec(
        name=name, version=version, actor=actor, strategy=strategy, baseline=baseline,
        rollback=rollback, plan=plan, stable_given=stable_given,
        upstream=check_upstream(spec.upstream, "upstream", allowed or UpstreamAllowList()),
        override=v.text(spec.override_reason, "override_reason", limit=REASON_LIMIT).strip(),
        targeting=targeting_of(spec.targeting, strategy),
        header_routes=header_routes_of(spec.header_routes, strategy),
    )


def _not_shadow(strategy: DeploymentStrategy, items: Sequence[object], field: str) -> None:
    if items and strategy is DeploymentStrategy.SHADOW:
        raise InvalidArgument(f"{field} does not apply to shadow deployments (they serve no "
                              "traffic)", field=field)


def targeting_of(items: Sequence[str | tg.Condition],
                 strategy: DeploymentStrategy) -> tuple[str, ...]:
    """The conditions' canonical texts; InvalidArgument naming ``targeting[i].<part>``."""
    if isinstance(items, str) or not isinstance(items, Sequence):
        raise InvalidArgument("targeting must be a list of conditions", field="targeting")
    _not_shadow(strategy, items, "targeting")
    if len(items) > tg.MAX_CONDITIONS:
        raise InvalidArgument(f"at most {tg.MAX_CONDITIONS} conditions", field="targeting")
    out = []
    for i, item in enumerate(items):
        try:
            if isinstance(item, str):
                out.append(tg.canonical([item], "targeting")[0])
            elif isinstance(item, tg.Condition):
                tg.validate([item], "targeting")
                out.append(tg.format(item))
            else:
                raise InvalidArgument("a condition is a text or a Condition",
                                      field=f"targeting[{i}]")
        except tg.ConditionError as exc:
            where = exc.field.replace("targeting[0]", f"targeting[{i}]", 1)
            raise InvalidArgument(f"{where}: {exc.detail}", field=where) from None
    return tuple(out)


def header_routes_of(items: Sequence[tuple[str, str, str]],
                     strategy: DeploymentStrategy) -> tuple[tuple[str, str, str], ...]:
    """Checked (header, value, variant) triples; the variant is one of the strategy's."""
    _not_shadow(strategy, items, "header_routes")
    if len(items) > tg.MAX_CONDITIONS:
        raise InvalidArgument(f"at most {tg.MAX_CONDITIONS} header routes",
                              field="header_routes")
    names = ("green", "blue") if strategy is DeploymentStrategy.BLUE_GREEN else (
        "canary", "stable")
    out: list[tuple[str, str, str]] = []
    for i, item in enumerate(items):
        f = f"header_routes[{i}]"
        if not isinstance(item, tuple | list) or len(item) != 3:
            raise InvalidArgument(f"{f} must be (header, value, variant)", field=f)
        header, value, variant = item
        try:
            tg.validate([tg.Condition(attribute=str(header), op=tg.EXISTS)], "")
        except tg.ConditionError as exc:
            raise InvalidArgument(f"{f}.header: {exc.detail}", field=f"{f}.header") from None
        if str(header).startswith(tg.PARAM_PREFIX):
            raise InvalidArgument(f"{f}.header: a header route needs a header, not a parameter",
                                  field=f"{f}.header")
        if not isinstance(value, str) or not 0 < len(value) <= tg.MAX_VALUE_CHARS:
            raise InvalidArgument(f"{f}.value must be 1-{tg.MAX_VALUE_CHARS} characters",
                                  field=f"{f}.value")
        if variant not in names:
            raise InvalidArgument(f"{f}.variant must be one of {list(names)} for a "
                                  f"{strategy.value} deployment, got {variant!r}",
                                  field=f"{f}.variant")
        if any(h == header and val == value for h, val, _ in out):
            raise InvalidArgument(f"{f}: {header}: {value} is routed twice", field=f)
        out.append((str(header), value, str(variant)))
    return tuple(out)


def parse_ref(value: object, field: str) -> tuple[str, str]:
    """``"name:version"`` (or ``"name"``) -> (name, version)."""
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"{field} must be 'name:version'", field=field)
    name, _, version = value.partition(":")
    v.name(name, field)
    if version:
        v.name(version, field)
    return name, version


def non_negative(value: object, field: str) -> float:
    x = v.finite(value, field)
    if x < 0:
        raise InvalidArgument(f"{field} must not be negative, got {value!r}", field=field)
    return x


def integer(value: object, field: str, minimum: int = 0) -> int:
    """An int (or an integral float, as JSON and protobuf may deliver it) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgument(f"{field} must be an integer, got {value!r}", field=field)
    if isinstance(value, float) and not value.is_integer():
        raise InvalidArgument(f"{field} must be an integer, got {value!r}", field=field)
    n = int(value)
    if n < minimum:
        raise InvalidArgument(f"{field} must be >= {minimum}, got {value!r}", field=field)
    return n


def validate_metrics(m: PerformanceMetrics, field: str) -> PerformanceMetrics:
    if not isinstance(m, PerformanceMetrics):
        raise InvalidArgument(f"{field} must be PerformanceMetrics", field=field)
    out = PerformanceMetrics(request_count=integer(m.request_count, f"{field}.request_count"))
    for name in ("latency_p50", "latency_p95", "latency_p99", "latency_mean", "throughput"):
        value = getattr(m, name)
        if value is not None:
            setattr(out, name, non_negative(value, f"{field}.{name}"))
    if m.error_rate is not None:
        out.error_rate = v.fraction(m.error_rate, f"{field}.error_rate")
    return out


def validate_rollback(c: RollbackConfig) -> RollbackConfig:
    f = "rollback_config"
    if not isinstance(c, RollbackConfig):
        raise InvalidArgument(f"{f} must be RollbackConfig", field=f)
    out = RollbackConfig(
        error_rate_threshold=v.fraction(c.error_rate_threshold, f"{f}.error_rate_threshold"),
        latency_threshold_multiplier=non_negative(c.latency_threshold_multiplier,
                                                  f"{f}.latency_threshold_multiplier"),
        min_requests_before_check=integer(c.min_requests_before_check,
                                          f"{f}.min_requests_before_check"),
        max_failed_checks=integer(c.max_failed_checks, f"{f}.max_failed_checks", 1),
        statistical_judge=bool(c.statistical_judge),
        alpha=v.fraction(c.alpha, f"{f}.alpha"),
        latency_effect_threshold=v.fraction(c.latency_effect_threshold,
                                            f"{f}.latency_effect_threshold"),
        min_agreement_rate=(None if c.min_agreement_rate is None
                            else v.fraction(c.min_agreement_rate, f"{f}.min_agreement_rate")),
        auto_rollback=bool(c.auto_rollback),
        metric_rules=validate_rules(c.metric_rules, f"{f}.metric_rules"),
    )
    if out.latency_threshold_multiplier == 0:
        raise InvalidArgument(f"{f}.latency_threshold_multiplier must be positive",
                              field=f"{f}.latency_threshold_multiplier")
    if not 0 < out.alpha < 1:
        raise InvalidArgument(f"{f}.alpha must be in (0, 1)", field=f"{f}.alpha")
    return out


def plan_for(strategy: DeploymentStrategy, steps: Sequence[float] | None,
             step_duration_seconds: float, analysis_interval_seconds: float,
             preview: PreviewMode | str, mirror_percentage: float,
             switch_back_seconds: float | None = None) -> RolloutPlan:
    dur = non_negative(step_duration_seconds, "step_duration_seconds")
    if dur > MAX_DURATION:
        raise InvalidArgument("step_duration_seconds must be at most 30 days",
                              field="step_duration_seconds")
    interval = v.finite(analysis_interval_seconds, "analysis_interval_seconds")
    if not MIN_INTERVAL <= interval <= MAX_DURATION:
        raise InvalidArgument(f"analysis_interval_seconds must be in [{MIN_INTERVAL}, 30 days]",
                              field="analysis_interval_seconds")
    mirror = v.percentage(mirror_percentage, "mirror_percentage")
    try:
        mode = PreviewMode(preview)
    except ValueError:
        raise InvalidArgument(f"preview must be one of {[m.value for m in PreviewMode]}",
                              field="preview") from None
    return RolloutPlan(_steps(strategy, steps), dur, interval, mode, mirror,
                       _switch_back(strategy, switch_back_seconds))


def _steps(strategy: DeploymentStrategy, steps: Sequence[float] | None) -> list[float]:
    if strategy is not DeploymentStrategy.CANARY:
        fixed = _FIXED_STEPS[strategy]
        if steps and [v.percentage(s, "steps") for s in steps] != fixed:
            raise InvalidArgument(f"{strategy.value} deployments have the fixed steps {fixed}",
                                  field="steps")
        return list(fixed)
    raw = list(DEFAULT_CANARY_STEPS) if not steps else list(steps)
    if len(raw) > MAX_STEPS:
        raise InvalidArgument(f"at most {MAX_STEPS} steps", field="steps")
    values = [v.percentage(s, "steps") for s in raw]
    for a, b in zip(values, values[1:], strict=False):
        if b <= a:
            raise InvalidArgument(f"steps must be strictly increasing, got {raw}", field="steps")
    if values[-1] != 100.0:
        values.append(100.0)  # a canary ends with all traffic on the new version
    return values


def _switch_back(strategy: DeploymentStrategy, seconds: float | None) -> float | None:
    if seconds is None:
        return None
    if strategy is not DeploymentStrategy.BLUE_GREEN:
        raise InvalidArgument("switch_back_seconds applies to blue_green deployments only",
                              field="switch_back_seconds")
    value = non_negative(seconds, "switch_back_seconds")
    if value > MAX_DURATION:
        raise InvalidArgument("switch_back_seconds must be at most 30 days",
                              field="switch_back_seconds")
    return value
