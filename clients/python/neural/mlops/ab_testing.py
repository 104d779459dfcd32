"""A/B tests: sticky hash assignment, recording as sufficient statistics, and analysis.

``ABTestManager("./ab_tests")`` runs against the embedded store in that folder;
``ABTestManager("grpc://HOST:PORT")`` against a control plane. Both behave identically
(same return types, same exceptions from :mod:`neural.mlops.errors`).

Quick reference (see also the seed documentation)::

    manager = ABTestManager("./ab_tests")
    test = manager.create_test(name=..., control_variant="model:v1", treatment_variant="model:v2",
                               traffic_split=0.1, strategy=TrafficSplitStrategy.HASH_BASED)
    manager.start_test(test.test_id)
    variant = manager.get_variant(test.test_id, user_id="user123")   # "control" / "treatment"
    manager.record_request(test_id=test.test_id, variant=variant, success=True, latency=0.042,
                           custom_metrics={"accuracy": 0.96})
    manager.record_outcome(test.test_id, user_id="user123", success=True)   # a late conversion
    analysis = manager.analyze_test(test.test_id, confidence_level=0.95)     # a JSON-safe dict

``HASH_BASED`` assignment: ``bucket = uint64_be(sha256(test_id + ":" + user_id)[:8]) / 2**64``,
treatment iff ``bucket < traffic_split`` (spec: ``neural/mlops/v1/ASSIGNMENT.md``), so a
user keeps their variant while the split only grows, in every language and process.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from neural.mlops._remote.experiments import RemoteExperiments
from neural.mlops._runtime import ServiceClient
from neural.mlops.server.errors import InvalidArgument
from neural.mlops.server.experiments.analysis import DECISION_FIXED, DECISION_SEQUENTIAL
from neural.mlops.server.experiments.bandit import BanditConfig
from neural.mlops.server.experiments.model import (
    ABTest,
    SplitChange,
    TestStatus,
    TrafficSplitStrategy,
    Variant,
)
from neural.mlops.server.experiments.recording import RequestRecord, validate_custom_metrics
from neural.mlops.server.experiments.service import ExperimentService
from neural.mlops.server.experiments.spec import CreateSpec

__all__ = [
    "DECISION_FIXED",
    "BanditConfig",
    "DECISION_SEQUENTIAL",
    "ABTest",
    "ABTestManager",
    "RequestRecord",
    "SplitChange",
    "TestStatus",
    "TrafficSplitStrategy",
    "Variant",
]


def _status(value: TestStatus | str | None) -> TestStatus | None:
    if value is None or value == "":
        return None
    raw = getattr(value, "value", value)
    try:
        return TestStatus(str(raw).lower())
    except ValueError:
        raise InvalidArgument(f"unknown status {value!r}", field="status") from None


def _record(rec: RequestRecord | Mapping[str, Any]) -> RequestRecord:
    if isinstance(rec, RequestRecord):
        r = rec
    elif isinstance(rec, Mapping):
        unknown = set(rec) - set(RequestRecord.__dataclass_fields__)
        if unknown:
            raise InvalidArgument(f"unknown record fields {sorted(unknown)}", field="records")
        r = RequestRecord(**rec)
    else:
        raise InvalidArgument("each record must be a dict or RequestRecord", field="records")
    if r.variant is not None and not isinstance(r.variant, str):
        raise InvalidArgument(f"variant must be a variant name, got {r.variant!r}", field="variant")
    if r.success is not None and not isinstance(r.success, bool):
        raise InvalidArgument("success must be True or False", field="success")
    if r.latency is not None and (
        isinstance(r.latency, bool) or not isinstance(r.latency, (int, float))
    ):
        raise InvalidArgument(
            f"latency must be a number of seconds, got {r.latency!r}", field="latency"
        )
    r.custom_metrics = validate_custom_metrics(r.custom_metrics, "custom_metrics")
    if r.user_id is not None:
        r.user_id = str(r.user_id)
    if r.status_code is not None:
        r.status_code = str(r.status_code)
    if r.timestamp is not None and not isinstance(r.timestamp, datetime):
        raise InvalidArgument("timestamp must be a datetime", field="timestamp")
    return r


def _listed(variants: Any) -> list[Any] | None:
    if variants is None:
        return None
    try:
        return list(variants)
    except TypeError:
        raise InvalidArgument(
            "variants must be a list of (name, model_ref, weight)", field="variants"
        ) from None


async def _list_page(experiments: ExperimentService | RemoteExperiments, *,
                     status: TestStatus | None, page_token: str) -> tuple[list[ABTest], str]:
    return await experiments.list_tests(status, page_token=page_token)


def _tid(test_id: object) -> str:
    if not isinstance(test_id, str) or not test_id:
        raise InvalidArgument("test_id is required", field="test_id")
    return test_id


class ABTestManager(ServiceClient[ExperimentService | RemoteExperiments]):
    """The seed's A/B testing API, embedded or remote."""

    service = "experiments"
    remote = RemoteExperiments

    def __init__(
        self, location: str | os.PathLike[str] = "./ab_tests", *, token: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        super().__init__(location, token=token, timeout=timeout)

    # -- lifecycle ------------------------------------------------------------

    def create_test(
        self,
        name: str,
        description: str = "",
        control_variant: str | None = None,
        treatment_variant: str | None = None,
        traffic_split: float | None = None,
        strategy: TrafficSplitStrategy | str = TrafficSplitStrategy.HASH_BASED,
        created_by: str = "",
        *,
        variants: Sequence[tuple[str, str, float]] | None = None,
        control: str = "control",
        confidence_level: float = 0.95,
        minimum_detectable_effect: float = 0.05,
        power: float = 0.8,
        decision_rule: str = DECISION_FIXED,
        sequential_tau: float | None = None,
        model_name: str = "",
        guardrails: Sequence[Any] | None = None,
        sequential_tuning: float = 5000.0,
        srm_threshold: float = 0.001,
        multiple_testing: str = "holm",
        prior_mean: float = 0.0,
        prior_sd: float = 0.0,
        bandit: Mapping[str, Any] | BanditConfig | None = None,
        layer: str = "",
        layer_share: float | None = None,
        layer_range: tuple[float, float] | None = None,
        targeting: Sequence[str] | None = None,
    ) -> ABTest:
        """Create a DRAFT test. Two variants: ``control_variant`` / ``treatment_variant``
        are registry refs ``"name:version"`` and ``traffic_split`` the treatment's share
        (default 0.5). N variants: ``variants=[(name, model_ref, weight), ...]`` with one
        named ``control``. ``decision_rule="sequential"`` decides on the always-valid
        (mSPRT) p-value, so the test may be stopped at any look. ``guardrails``: metrics
        that must not get significantly worse (``"error_rate"``, ``"latency_p95"``, a custom
        metric, or ``{"metric", "direction", "tolerance"}``); a violation stops the test.
        The sequential mixture is scaled to the data and tightest at ``sequential_tuning``
        requests in all (``sequential_tau``: a fixed absolute mixing scale instead).
        ``srm_threshold``: the sample-ratio alarm's p; ``multiple_testing``: ``"holm"`` or
        ``"benjamini_hochberg"``; ``prior_mean`` / ``prior_sd`` > 0: a Gaussian prior on
        the relative effect for the Bayesian results (default flat).
        ``strategy="multi_armed_bandit"``: Thompson sampling; ``bandit`` holds its settings
        (``interval_seconds``, ``burn_in_units``, ``burn_in_seconds``, ``min_share``,
        ``metric``, ``metric_kind`` "conversion"/"continuous", ``seed``, ``minimize``;
        see the user guide).
        ``layer``: the layer the test runs in (default: its model's own); tests of one
        layer never share a unit. ``layer_share``: the share of the layer it takes (the
        first free range of that width when it starts; default all), or ``layer_range``
        ``(start, end)`` exactly. ``targeting``: conditions a request must match to be in
        the test, e.g. ``["x-country in [DE, FR]", "x-app-version >= 4.2"]``."""
        spec = CreateSpec(
            name=name, description=description, control_variant=control_variant,
            treatment_variant=treatment_variant, traffic_split=traffic_split, strategy=strategy,
            created_by=created_by, variants=_listed(variants),
            control=control, confidence_level=confidence_level,
            minimum_detectable_effect=minimum_detectable_effect, power=power,
            decision_rule=decision_rule, sequential_tau=sequential_tau, model_name=model_name,
            guardrails=guardrails, sequential_tuning=sequential_tuning,
            srm_threshold=srm_threshold, multiple_testing=multiple_testing,
            prior_mean=prior_mean, prior_sd=prior_sd, bandit=bandit, layer=layer,
            layer_share=layer_share, layer_range=layer_range, targeting=targeting,
        )
        return self._call(lambda e: e.create_test(spec), created_by or None)

    def get_test(self, test_id: str) -> ABTest:
        test_id = _tid(test_id)
        return self._call(lambda e: e.get_test(test_id))

    def list_tests(self, status: TestStatus | str | None = None) -> list[ABTest]:
        """Every test (optionally only those in ``status``), oldest first."""
        st = _status(status)
        out: list[ABTest] = []
        token = ""
        while True:
            page, token = self._call(partial(_list_page, status=st, page_token=token))
            out.extend(page)
            if not token:
                return out

    def start_test(self, test_id: str, *, actor: str | None = None) -> ABTest:
        test_id = _tid(test_id)
        return self._call(lambda e: e.start_test(test_id), actor)

    def pause_test(self, test_id: str, reason: str = "", *, actor: str | None = None) -> ABTest:
        test_id = _tid(test_id)
        return self._call(lambda e: e.pause_test(test_id, reason), actor)

    def resume_test(self, test_id: str, *, actor: str | None = None) -> ABTest:
        test_id = _tid(test_id)
        return self._call(lambda e: e.resume_test(test_id), actor)

    def stop_test(self, test_id: str, reason: str = "", *, actor: str | None = None) -> ABTest:
        test_id = _tid(test_id)
        return self._call(lambda e: e.stop_test(test_id, reason), actor)

    def conclude_test(
        self, test_id: str, winner: str | None = None, reason: str = "", *, actor: str | None = None
    ) -> ABTest:
        """Conclude with ``winner`` (a variant name); without it, the analysis' recommendation."""
        test_id = _tid(test_id)
        return self._call(lambda e: e.conclude_test(test_id, winner, reason), actor)

    def update_split(
        self,
        test_id: str,
        traffic_split: float | None = None,
        *,
        weights: Mapping[str, float] | None = None,
        explicit: bool = False,
        reason: str = "",
        actor: str | None = None,
    ) -> ABTest:
        """Ramp up: a running test's split may only grow unless ``explicit=True``."""
        test_id = _tid(test_id)
        return self._call(lambda e: e.update_split(test_id, weights, traffic_split=traffic_split,
                                                   explicit=explicit, reason=reason), actor)

    def force_variant(self, test_id: str, user_id: str, variant: str | None) -> ABTest:
        """QA override: ``user_id`` always gets ``variant`` (``None`` removes the override)."""
        test_id = _tid(test_id)
        return self._call(lambda e: e.set_forced_variant(test_id, user_id, variant))

    # -- assignment and recording ---------------------------------------------

    def get_variant(self, test_id: str, user_id: str | None = None) -> str:
        """The variant name for this unit (``"control"`` / ``"treatment"`` with two variants)."""
        test_id = _tid(test_id)
        return self._call(lambda e: e.get_variant(test_id, user_id))[0]

    def record_request(
        self,
        test_id: str,
        variant: str | None = None,
        success: bool | None = None,
        latency: float | None = None,
        custom_metrics: Mapping[str, float] | None = None,
        *,
        user_id: str | None = None,
        error: bool = False,
        timestamp: datetime | None = None,
        status_code: str | None = None,
    ) -> None:
        """Record one served request (``latency`` in seconds). Without ``variant`` the
        unit's variant is recomputed from ``user_id`` (HASH_BASED tests)."""
        test_id = _tid(test_id)
        self.record_requests(test_id, [RequestRecord(
            variant=variant, success=success, latency=latency, custom_metrics=custom_metrics,
            error=error, user_id=user_id, timestamp=timestamp, status_code=status_code)])

    def record_requests(self, test_id: str,
                        records: Iterable[RequestRecord | Mapping[str, Any]]) -> int:
        """Record a batch (dicts with record_request's keyword names, or RequestRecord)."""
        test_id = _tid(test_id)
        recs = [_record(r) for r in records]
        return self._call(lambda e: e.record_requests(test_id, recs))

    def record_outcome(
        self,
        test_id: str,
        user_id: str,
        success: bool = True,
        custom_metrics: Mapping[str, float] | None = None,
        *,
        variant: str | None = None,
        timestamp: datetime | None = None,
    ) -> str:
        """Credit a late outcome to the unit's variant; returns that variant."""
        test_id = _tid(test_id)
        custom = validate_custom_metrics(custom_metrics, "custom_metrics")
        if not isinstance(success, bool):
            raise InvalidArgument("success must be True or False", field="success")
        if timestamp is not None and not isinstance(timestamp, datetime):
            raise InvalidArgument("timestamp must be a datetime", field="timestamp")
        if variant is not None and not isinstance(variant, str):
            raise InvalidArgument(f"variant must be a variant name, got {variant!r}",
                                  field="variant")
        uid = "" if user_id is None else str(user_id)
        return self._call(lambda e: e.record_outcome(
            test_id, uid, success=success, custom_metrics=custom, variant=variant,
            timestamp=timestamp))

    def set_covariates(self, test_id: str, values: Mapping[str, float]) -> int:
        """Each unit's pre-experiment covariate (user id -> number, e.g. its conversions
        before the test) for CUPED variance reduction; returns how many were stored."""
        test_id = _tid(test_id)
        covariates = dict(values)
        return self._call(lambda e: e.set_covariates(test_id, covariates))

    # -- analysis -------------------------------------------------------------

    def analyze_test(
        self,
        test_id: str,
        confidence_level: float | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> dict[str, Any]:
        """The analysis report: a JSON-safe dict (never NaN; undefined values are None and
        ``warnings`` says why). Keys include ``statistically_significant``, ``p_value``,
        ``improvement`` (``relative_improvement`` in percent), ``control``/``treatment``,
        ``metrics``, ``srm``, ``power``, ``sequential``, ``bayesian``, ``recommendation``.
        ``since`` / ``until`` restrict it to the one-minute windows starting in that range."""
        test_id = _tid(test_id)
        for field_name, value in (("since", since), ("until", until)):
            if value is not None and not isinstance(value, datetime):
                raise InvalidArgument(f"{field_name} must be a datetime", field=field_name)
        return self._call(lambda e: e.analyze_test(test_id, confidence_level, since=since,
                                                   until=until))

    def reweight_bandit(self, test_id: str) -> ABTest:
        """Reweight a RUNNING multi_armed_bandit test now, whatever its interval, and return
        it (its weights unchanged while the burn-in lasts). A control plane also reweights
        every interval by itself; an embedded store only when asked, as nothing runs
        between calls."""
        test_id = _tid(test_id)
        return self._call(lambda e: e.reweight_bandit_test(test_id))
