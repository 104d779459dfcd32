"""The shadow comparison: primary vs shadow of mirrored calls, with a verdict (pure).

:func:`compare` takes the shadow's accumulated :class:`ShadowStats` (and the primary's
own window for its error rate) and returns a :class:`ShadowComparison`. Its verdict is

* ``inconclusive`` below :data:`SHADOW_MIN_SAMPLES` compared pairs;
* ``fail`` when the agreement rate is below ``min_agreement_rate``, the shadow's p95
  latency exceeds ``max_latency_ratio`` times the primary's, or the shadow's error rate
  exceeds the primary's by more than :data:`ERROR_RATE_MARGIN`;
* ``pass`` otherwise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from neural.mlops.server.deployments.model import Verdict
from neural.mlops.v1.traffic import LatencyHistogram, ShadowStats, VariantStats

SHADOW_MIN_SAMPLES = 100
ERROR_RATE_MARGIN = 0.01  # absolute: a shadow may err this much more often than the primary


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Latency of one side in seconds (``None``: no observation)."""

    mean: float | None = None
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    count: int = 0

    @classmethod
    def of(cls, h: LatencyHistogram) -> LatencySummary:
        return cls(h.mean, h.quantile(0.5), h.quantile(0.95), h.quantile(0.99), h.count)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ShadowComparison:
    """Agreement, latencies and error rates of primary vs shadow, and the verdict."""

    shadow_id: str
    primary_model: str
    shadow_model: str
    status: str
    n: int  # compared pairs
    agreements: int
    agreement_rate: float | None
    mirrored: int  # calls mirrored to the shadow (compared or not)
    dropped: int  # mirrored calls the sidecar shed under load
    primary_latency: LatencySummary
    shadow_latency: LatencySummary
    latency_ratio_p95: float | None
    primary_error_rate: float | None
    shadow_error_rate: float | None
    verdict: Verdict
    reasons: list[str] = field(default_factory=list)
    disagreement_samples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def disagreements(self) -> int:
        return self.n - self.agreements

    def to_dict(self) -> dict[str, Any]:
        """The documented result keys (JSON-serialisable)."""
        return {
            "shadow_id": self.shadow_id,
            "primary_model": self.primary_model,
            "shadow_model": self.shadow_model,
            "status": self.status,
            "n": self.n,
            "agreements": self.agreements,
            "disagreements": self.disagreements,
            "agreement_rate": self.agreement_rate,
            "mirrored": self.mirrored,
            "dropped": self.dropped,
            "primary_latency": self.primary_latency.to_dict(),
            "shadow_latency": self.shadow_latency.to_dict(),
            "latency_ratio_p95": self.latency_ratio_p95,
            "primary_error_rate": self.primary_error_rate,
            "shadow_error_rate": self.shadow_error_rate,
            "verdict": self.verdict.value,
            "reasons": list(self.reasons),
            "disagreement_samples": list(self.disagreement_samples),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ShadowComparison:
        """The inverse of :meth:`to_dict` (a remote caller's JSON)."""
        return cls(
            shadow_id=d["shadow_id"], primary_model=d["primary_model"],
            shadow_model=d["shadow_model"], status=d["status"], n=d["n"],
            agreements=d["agreements"], agreement_rate=d["agreement_rate"],
            mirrored=d["mirrored"], dropped=d["dropped"],
            primary_latency=LatencySummary(**d["primary_latency"]),
            shadow_latency=LatencySummary(**d["shadow_latency"]),
            latency_ratio_p95=d["latency_ratio_p95"], primary_error_rate=d["primary_error_rate"],
            shadow_error_rate=d["shadow_error_rate"], verdict=Verdict(d["verdict"]),
            reasons=list(d["reasons"]), disagreement_samples=list(d["disagreement_samples"]),
        )


@dataclass(frozen=True, slots=True)
class ShadowLimits:
    min_agreement_rate: float = 0.95
    max_latency_ratio: float = 1.5  # shadow p95 / primary p95


def compare(ss: ShadowStats, primary: VariantStats | None, limits: ShadowLimits, *,
            shadow_id: str, primary_model: str, shadow_model: str,
            status: str) -> ShadowComparison:
    """Judge the shadow's statistics ``ss``; ``primary`` is the primary's own window."""
    mirrored = max(ss.shadow_latency.count, ss.compared + ss.shadow_errors)
    primary_lat, shadow_lat = LatencySummary.of(ss.primary_latency), LatencySummary.of(
        ss.shadow_latency)
    shadow_error_rate = ss.shadow_errors / mirrored if mirrored else None
    primary_error_rate = primary.error_rate if primary is not None else None
    ratio = (shadow_lat.p95 / primary_lat.p95
             if shadow_lat.p95 is not None and primary_lat.p95 else None)
    verdict, reasons = _verdict(ss, limits, ratio, primary_error_rate, shadow_error_rate)
    return ShadowComparison(
        shadow_id=shadow_id, primary_model=primary_model, shadow_model=shadow_model,
        status=status, n=ss.compared, agreements=ss.agreements,
        agreement_rate=ss.agreement_rate, mirrored=mirrored, dropped=ss.dropped,
        primary_latency=primary_lat, shadow_latency=shadow_lat, latency_ratio_p95=ratio,
        primary_error_rate=primary_error_rate, shadow_error_rate=shadow_error_rate,
        verdict=verdict, reasons=reasons, disagreement_samples=list(ss.disagreements),
    )


def _verdict(ss: ShadowStats, limits: ShadowLimits, ratio: float | None,
             primary_error_rate: float | None,
             shadow_error_rate: float | None) -> tuple[Verdict, list[str]]:
    if ss.compared < SHADOW_MIN_SAMPLES:
        return Verdict.INCONCLUSIVE, [
            f"{ss.compared} compared pairs; {SHADOW_MIN_SAMPLES} needed for a verdict"]
    reasons = []
    rate = ss.agreement_rate or 0.0
    if rate < limits.min_agreement_rate:
        reasons.append(f"agreement rate {rate:.4f} < {limits.min_agreement_rate:.4f}")
    if ratio is not None and ratio > limits.max_latency_ratio:
        reasons.append(f"shadow p95 latency is {ratio:.2f}x the primary's "
                       f"(limit {limits.max_latency_ratio:g}x)")
    primary_rate = primary_error_rate or 0.0
    if shadow_error_rate is not None and shadow_error_rate > primary_rate + ERROR_RATE_MARGIN:
        reasons.append(f"shadow error rate {shadow_error_rate:.4f} vs primary {primary_rate:.4f}")
    return (Verdict.FAIL if reasons else Verdict.PASS), reasons
