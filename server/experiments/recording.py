"""Recording traffic: requests and late outcomes, folded into one-minute windows.

Traffic is stored only as summed :class:`~neural.mlops.v1.traffic.VariantStats` per
(test, variant, one-minute window) through :mod:`neural.mlops.server.traffic`; no
per-request rows. ``record_requests`` and the sidecars' metric batches feed the same
windows (route_id = test_id).

A record that names its unit (``user_id``) also adds to that unit's counts
(:mod:`.unitstore`), so the analysis can treat the unit, not the request, as the
observation; records without one count only in the windows (and the analysis says so).

Late outcomes are credited by unit id. For HASH_BASED tests the unit's variant is
recomputed from the hash (and the QA overrides), so nothing per unit is stored. RANDOM
and ROUND_ROBIN assignments are not reproducible and are not stored either: an outcome for
such a test must name its ``variant``, otherwise the call is rejected (FAILED_PRECONDITION)
rather than guessed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from neural.mlops.server import traffic
from neural.mlops.server import validation as v
from neural.mlops.server.clock import Clock, to_us
from neural.mlops.server.errors import FailedPrecondition, InvalidArgument
from neural.mlops.server.experiments import store, unitstore
from neural.mlops.server.experiments.assignment import check_in_test, hash_variant
from neural.mlops.server.experiments.cache import TestCache
from neural.mlops.server.experiments.model import (
    RECORDING,
    ABTest,
    TestStatus,
    TrafficSplitStrategy,
)
from neural.mlops.server.storage import Database
from neural.mlops.v1.traffic import Moments, VariantStats
from neural.mlops.v1.units import UnitCounts, unit_key

MAX_BATCH = 10_000  # records per record_requests call
MAX_CUSTOM_METRICS = 50  # per record or outcome
MAX_COVARIATES = 100_000  # units per set_covariates call


@dataclass(slots=True)
class RequestRecord:
    """One request for :meth:`ExperimentService.record_requests`."""

    variant: str | None = None
    success: bool | None = None
    latency: float | None = None
    custom_metrics: Mapping[str, float] | None = None
    error: bool = False
    user_id: str | None = None
    timestamp: datetime | None = None
    status_code: str | None = None


def validate_custom_metrics(
    metrics: Mapping[str, float] | None, field_name: str
) -> dict[str, float]:
    """Custom metrics as {valid name: finite number}; InvalidArgument otherwise."""
    if metrics is None:
        return {}
    if not isinstance(metrics, Mapping):
        raise InvalidArgument(f"{field_name} must be a mapping of name to number", field=field_name)
    if len(metrics) > MAX_CUSTOM_METRICS:
        raise InvalidArgument(f"at most {MAX_CUSTOM_METRICS} custom metrics", field=field_name)
    return {v.name(k, field_name): v.finite(x, f"{field_name}.{k}") for k, x in metrics.items()}


def _timestamp_us(value: object, now_us: int) -> int:
    if value is None:
        return now_us
    if not isinstance(value, datetime):
        raise InvalidArgument("timestamp must be a datetime", field="timestamp")
    return to_us(value)


def _record_variant(test: ABTest, rec: RequestRecord, where: str) -> str:
    """The record's variant: as named, or recomputed from its unit id (HASH_BASED only).
    A unit outside the test's range of its layer is refused (it is in no arm)."""
    if rec.user_id:
        check_in_test(test, str(rec.user_id), where)
    variant = rec.variant
    if not variant:
        if not rec.user_id:
            raise InvalidArgument("variant (or unit_id) is required", field=where)
        if test.strategy != TrafficSplitStrategy.HASH_BASED:
            raise InvalidArgument(
                "variant is required: RANDOM/ROUND_ROBIN assignments cannot be recomputed",
                field=where,
            )
        variant = hash_variant(test, str(rec.user_id))
    if test.variant(variant) is None:
        raise InvalidArgument(
            f"{variant!r} is not a variant of {test.test_id!r} "
            f"({', '.join(x.name for x in test.variants)})",
            field=where,
        )
    return variant


Units = dict[str, dict[int, UnitCounts]]  # variant -> unit key -> counts


def _unit(units: Units, variant: str, user_id: object) -> UnitCounts:
    key = unit_key(v.text(str(user_id), "unit_id", limit=256))
    per = units.setdefault(variant, {})
    u = per.get(key)
    if u is None:
        u = per[key] = UnitCounts()
    return u


def _fold(
    parts: dict[tuple[str, int], VariantStats], units: Units, test: ABTest, rec: RequestRecord,
    where: str, now_us: int,
) -> None:
    """Check one record and add it to its (variant, window) part and to its unit."""
    variant = _record_variant(test, rec, where)
    custom = validate_custom_metrics(rec.custom_metrics, "custom_metrics")
    latency = None
    if rec.latency is not None:
        latency = v.finite(rec.latency, "latency")
        if latency < 0:
            raise InvalidArgument("latency must be >= 0 (seconds)", field="latency")
    if rec.success is not None and not isinstance(rec.success, bool):
        raise InvalidArgument("success must be true or false", field="success")
    ts = _timestamp_us(rec.timestamp, now_us)
    stats = parts.setdefault((variant, traffic.window_start(ts)), VariantStats())
    stats.observe(
        success=rec.success, latency=latency, error=bool(rec.error), custom=custom,
        status_code=rec.status_code,
    )
    if rec.user_id:
        u = _unit(units, variant, rec.user_id)
        u.requests += 1
        u.successes += 1 if rec.success else 0
        u.errors += 1 if rec.error else 0
        if latency is not None:
            u.latency_n += 1
            u.latency_sum += latency
        _add_custom(u, custom)


def _add_custom(u: UnitCounts, custom: Mapping[str, float]) -> None:
    for k, x in custom.items():
        m = u.custom.setdefault(k, [0, 0.0])
        m[0] += 1
        m[1] += x


class Recording:
    def __init__(self, db: Database, clock: Clock, cache: TestCache) -> None:
        self._db = db
        self._clock = clock
        self._cache = cache

    async def record_requests(self, test_id: str, records: Sequence[RequestRecord]) -> int:
        """Fold a batch of requests into the test's windows (one transaction)."""
        if len(records) > MAX_BATCH:
            raise InvalidArgument(f"at most {MAX_BATCH} records per batch", field="records")
        now_us = to_us(self._clock.now())
        _, test = await self._cache.lookup(test_id)
        if test.status not in RECORDING:
            raise FailedPrecondition(
                f"A/B test {test_id!r} is {test.status.value}; requests are recorded while it "
                "is running, paused or stopped"
            )
        parts: dict[tuple[str, int], VariantStats] = {}
        units: Units = {}
        for i, rec in enumerate(records):
            _fold(parts, units, test, rec, f"records[{i}]" if len(records) > 1 else "variant",
                  now_us)
        async with self._db.change(audited=False) as ch:
            for (variant, start), stats in parts.items():
                await traffic.apply(ch.conn, test_id, variant, start, stats, now_us=now_us)
            await unitstore.apply(ch.conn, test_id, units, now_us=now_us)
        return len(records)

    async def record_outcome(
        self,
        test_id: str,
        user_id: str,
        *,
        success: bool = True,
        custom_metrics: Mapping[str, float] | None = None,
        variant: str | None = None,
        timestamp: datetime | None = None,
    ) -> str:
        """Credit a late outcome (a conversion after the prediction) to the unit's variant.

        Adds to ``successes`` (and the custom metrics) without adding a request."""
        user_id = v.text(user_id, "unit_id", limit=256)
        if not user_id:
            raise InvalidArgument("unit_id is required", field="unit_id")
        now_us = to_us(self._clock.now())
        async with self._db.read() as conn:
            test = store.to_test(await store.load(conn, test_id), now_us)
        if test.status not in RECORDING:
            raise FailedPrecondition(
                f"A/B test {test_id!r} is {test.status.value}; outcomes are not recorded"
            )
        check_in_test(test, user_id)
        if variant:
            if test.variant(variant) is None:
                raise InvalidArgument(
                    f"{variant!r} is not a variant of {test_id!r}", field="variant"
                )
        elif test.strategy == TrafficSplitStrategy.HASH_BASED:
            variant = hash_variant(test, user_id)
        else:
            raise FailedPrecondition(
                f"A/B test {test_id!r} uses {test.strategy.value}: a unit's variant cannot be "
                "recomputed, so pass variant= with the outcome"
            )
        stats = VariantStats(successes=1 if success else 0)
        custom = validate_custom_metrics(custom_metrics, "custom_metrics")
        for k, x in custom.items():
            stats.custom.setdefault(k, Moments()).add(x)
        unit = UnitCounts(successes=1 if success else 0)
        _add_custom(unit, custom)
        ts = _timestamp_us(timestamp, now_us)
        async with self._db.change(audited=False) as ch:
            await traffic.apply(ch.conn, test_id, variant, traffic.window_start(ts), stats,
                                now_us=now_us)
            await unitstore.apply(ch.conn, test_id, {variant: {unit_key(user_id): unit}},
                                  now_us=now_us)
        return variant

    async def set_covariates(self, test_id: str, values: Mapping[str, float]) -> int:
        """Store each unit's pre-experiment covariate (CUPED), replacing earlier values;
        allowed before and during the test. Returns how many units were stored."""
        if not isinstance(values, Mapping):
            raise InvalidArgument("covariates must be a mapping of unit id to number",
                                  field="covariates")
        if len(values) > MAX_COVARIATES:
            raise InvalidArgument(f"at most {MAX_COVARIATES} covariates per call",
                                  field="covariates")
        keyed: dict[int, float] = {}
        for unit, x in values.items():
            uid = v.text(str(unit) if unit is not None else "", "covariates", limit=256)
            if not uid:
                raise InvalidArgument("covariate unit ids must not be empty", field="covariates")
            keyed[unit_key(uid)] = v.finite(x, f"covariates.{uid[:40]}")
        now_us = to_us(self._clock.now())
        async with self._db.change(audited=False) as ch:
            test = store.to_test(await store.load(ch.conn, test_id), now_us)
            if test.status == TestStatus.CONCLUDED:
                raise FailedPrecondition(f"A/B test {test_id!r} is concluded")
            await unitstore.set_covariates(ch.conn, test_id, keyed, now_us=now_us)
        return len(keyed)
