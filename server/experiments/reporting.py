"""Analysing a stored test: its windows' totals through :func:`.analysis.build_report`.

Each look over the whole test also records, per variant and effect, its mSPRT p-value
and confidence sequence, so that the reported always-valid p-value is the running
minimum over every look and the confidence sequence their intersection
(:class:`.sequential.Running`, merged under the row lock). A look restricted to a time
range (``since`` / ``until``) neither uses nor updates that state.

A look over the whole test is analysed by unit when requests named their unit (the
per-unit totals of :mod:`.unitstore`), CUPED-adjusted when covariates were given; the
per-unit counts are not windowed, so a ranged look counts requests (and says so).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from neural.mlops.server import traffic
from neural.mlops.server import validation as v
from neural.mlops.server.clock import Clock, to_us
from neural.mlops.server.errors import InvalidArgument
from neural.mlops.server.experiments import (
    bandit_report,
    bandit_store,
    sequential,
    store,
    unitstore,
)
from neural.mlops.server.experiments.analysis import build_report
from neural.mlops.server.experiments.bandit_report import BanditReport
from neural.mlops.server.experiments.byunit import UNIT
from neural.mlops.server.experiments.config import DECISION_SEQUENTIAL
from neural.mlops.server.experiments.guardrails import SequentialLook, evaluate
from neural.mlops.server.experiments.model import RECORDING, ABTest
from neural.mlops.server.experiments.report import Action, AnalysisReport, Recommendation
from neural.mlops.server.experiments.unitstats import UnitTotals
from neural.mlops.server.storage import Database
from neural.mlops.v1.traffic import VariantStats


@dataclass(frozen=True, slots=True)
class TestAnalysis:
    """The report of one test, with the test it describes and the range analysed."""

    __test__ = False  # not a pytest class

    test: ABTest
    since: datetime | None
    until: datetime | None
    report: AnalysisReport
    bandit: BanditReport | None = None  # multi_armed_bandit tests

    def to_dict(self) -> dict[str, Any]:
        """What ``analyze_test`` returns: the test's identity, then the report's keys (and
        ``bandit`` for a multi-armed bandit)."""
        out = {
            "test_id": self.test.test_id,
            "since": self.since.isoformat() if self.since is not None else None,
            "until": self.until.isoformat() if self.until is not None else None,
            "name": self.test.name,
            "status": self.test.status.value,
            "strategy": self.test.strategy.value,
            "running_seconds": self.test.running_seconds,
            **self.report.to_dict(),
        }
        if self.bandit is not None:
            out["bandit"] = self.bandit.to_dict()
        return out


class Reporting:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def analyze(
        self,
        test_id: str,
        confidence_level: float | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> TestAnalysis:
        """The test's report (``since`` / ``until``: only the windows starting in range)."""
        if confidence_level is not None:
            confidence_level = v.finite(confidence_level, "confidence_level")
            if not 0.5 <= confidence_level < 1.0:
                raise InvalidArgument(
                    "confidence_level must be in [0.5, 1)", field="confidence_level"
                )
        since_us, until_us = _range(since, until)
        ranged = since_us is not None or until_us is not None
        now_us = to_us(self._clock.now())
        async with self._db.read() as conn:
            row = await store.load(conn, test_id)
            totals = await traffic.totals(conn, test_id, since_us, until_us)
            units = None if ranged else await unitstore.totals(conn, test_id)
            history = await bandit_store.history(conn, test_id)
        test = store.to_test(row, now_us)
        stored = {} if ranged else store.sequential_state(row)
        report = build_report(
            [(x.name, x.weight) for x in test.variants],
            totals,
            control=test.control,
            config=test.analysis_config(),
            confidence_level=confidence_level,
            elapsed_seconds=test.running_seconds or None,
            sequential_state=sequential.read_states(stored),
            units=units,
            cuped=True,  # applies only when both arms have covariates
        )
        report = _guarded(test, report, totals, units)
        bandit = None
        if test.bandit is not None:
            bandit = bandit_report.build(test, test.bandit, totals, history)
            report = bandit_report.judged(report, bandit, report.confidence_level)
        looked = _sequential_states(report)
        if test.status in RECORDING and not ranged:
            merged = sequential.merge_states(stored, looked)
            if merged != stored:
                async with self._db.change(audited=False) as ch:
                    await store.merge_sequential_state(
                        ch.conn, test_id, lambda now: sequential.merge_states(now, looked)
                    )
        return TestAnalysis(test, since, until, report, bandit)


def _sequential_states(report: AnalysisReport) -> dict[str, sequential.VariantState]:
    """What this look leaves for the next, per variant: the success rate's and each
    metric's running sequential state."""
    out = {}
    for name, comp in report.comparisons.items():
        if comp.sequential is None:
            continue
        metrics = {k: m.sequential.running for k, m in comp.metrics.items()
                   if m.sequential is not None}
        out[name] = sequential.VariantState(comp.sequential.running, metrics)
    return out


def _range(since: datetime | None, until: datetime | None) -> tuple[int | None, int | None]:
    """``since`` / ``until`` in microseconds (None: open), checked."""
    for field_name, value in (("since", since), ("until", until)):
        if value is not None and not isinstance(value, datetime):
            raise InvalidArgument(f"{field_name} must be a datetime", field=field_name)
    since_us = to_us(since) if since is not None else None
    until_us = to_us(until) if until is not None else None
    if since_us is not None and until_us is not None and until_us <= since_us:
        raise InvalidArgument("until must be after since", field="until")
    return since_us, until_us


def _guarded(test: ABTest, report: AnalysisReport, totals: dict[str, VariantStats],
             units: dict[str, UnitTotals] | None) -> AnalysisReport:
    """The report with the test's guardrails checked (compared variant against control;
    under the sequential rule by the always-valid views); a violated one makes the
    recommendation ``stop`` with the measured values."""
    if not test.guardrails or report.compared_variant == report.control_variant:
        return report
    c, t = report.control_variant, report.compared_variant
    pair = None
    by_unit = report.units is not None and report.units.unit == UNIT
    if by_unit and units and c in units and t in units:
        pair = (units[c], units[t])
    cfg = test.analysis_config()
    look = None
    if cfg.decision_rule == DECISION_SEQUENTIAL and t in report.comparisons:
        look = SequentialLook(report.comparisons[t].metrics, report.alpha, cfg.mixture())
    checks = evaluate(test.guardrails, totals.get(c, VariantStats()),
                      totals.get(t, VariantStats()), report.confidence_level, pair,
                      sequential_look=look)
    report = replace(report, guardrail_checks=tuple(checks))
    violated = [g for g in checks if g.violated]
    if not violated:
        return report
    reason = (f"guardrail violated: {t} is significantly worse than {c} on "
              + "; ".join(g.describe() for g in violated))
    rec = Recommendation(Action.STOP, c, reason,
                         [*report.recommendation.guardrails, *(g.describe() for g in violated)])
    return replace(report, recommendation=rec)
