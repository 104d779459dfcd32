"""ExperimentService: A/B tests, their assignment, recording and analysis (transport-free).

One object over the domain's parts, each a module with its own docstring:

* :mod:`.lifecycle`: create, start, pause, resume, stop, conclude (audited; each change
  rebuilds routing after commit);
* :mod:`.splits`: sticky split changes and QA overrides;
* :mod:`.assignment`: which variant a unit gets;
* :mod:`.recording`: requests and late outcomes, summed into one-minute windows;
* :mod:`.reporting` over :mod:`.analysis`: the analysis report;
* :mod:`.routes`: running tests as routes; :mod:`.store`: the domain's SQL.

Model references are checked against the registry only through its
:class:`~neural.mlops.server.registry.port.RegistryPort`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from neural.mlops.server.clock import Clock, SystemClock, to_us
from neural.mlops.server.errors import FailedPrecondition
from neural.mlops.server.experiments import routes
from neural.mlops.server.experiments.assignment import Assignment, hash_variant
from neural.mlops.server.experiments.bandit import Reweighting
from neural.mlops.server.experiments.bandit_loop import Bandits
from neural.mlops.server.experiments.cache import TestCache
from neural.mlops.server.experiments.lifecycle import Lifecycle
from neural.mlops.server.experiments.model import ABTest, TestStatus, Variant
from neural.mlops.server.experiments.recording import (
    Recording,
    RequestRecord,
    validate_custom_metrics,
)
from neural.mlops.server.experiments.reporting import Reporting, TestAnalysis
from neural.mlops.server.experiments.spec import CreateSpec, parse_strategy, validate_spec
from neural.mlops.server.experiments.splits import Splits
from neural.mlops.server.experiments.watch import GuardrailWatch
from neural.mlops.server.registry.port import RegistryPort
from neural.mlops.server.routing.model import ModelRoute
from neural.mlops.server.storage import Database

# The Python client (clients/python/neural/mlops/ab_testing.py) imports these from here;
# the two private names are kept for it until it imports from .spec / .recording.
_strategy = parse_strategy
_validate_custom = validate_custom_metrics

__all__ = ["CreateSpec", "ExperimentService", "RequestRecord", "validate_spec"]


class ExperimentService:
    """A/B tests. Also a :class:`~neural.mlops.server.routing.model.RouteProvider`.

    ``registry`` checks that model references name known versions; without it, every
    reference is taken as given."""

    def __init__(self, db: Database, *, clock: Clock | None = None, routing: Any = None,
                 registry: RegistryPort | None = None) -> None:
        self.db = db
        self.clock: Clock = clock or SystemClock()
        self.routing = routing
        cache = TestCache(db, self.clock, routing.invalidate if routing is not None else None)
        self._reporting = Reporting(db, self.clock)
        self._lifecycle = Lifecycle(db, self.clock, cache, registry, self._reporting)
        self._splits = Splits(db, self.clock, cache)
        self._assignment = Assignment(cache, db)
        self._recording = Recording(db, self.clock, cache)
        self._watch = GuardrailWatch(db, self._lifecycle, self._reporting.analyze)
        self._bandits = Bandits(db, self.clock, cache)

    # --- lifecycle --------------------------------------------------------------

    async def create_test(self, spec: CreateSpec) -> ABTest:
        return await self._lifecycle.create_test(spec)

    async def get_test(self, test_id: str) -> ABTest:
        return await self._lifecycle.get_test(test_id)

    async def list_tests(
        self, status: TestStatus | str | None = None, *, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[ABTest], str]:
        return await self._lifecycle.list_tests(status, page_size=page_size,
                                                page_token=page_token)

    async def start_test(self, test_id: str) -> ABTest:
        return await self._lifecycle.transition(
            test_id, TestStatus.RUNNING, action="start", allowed_from=frozenset({TestStatus.DRAFT})
        )

    async def pause_test(self, test_id: str, reason: str = "") -> ABTest:
        return await self._lifecycle.transition(
            test_id, TestStatus.PAUSED, action="pause", reason=reason
        )

    async def resume_test(self, test_id: str) -> ABTest:
        return await self._lifecycle.transition(
            test_id, TestStatus.RUNNING, action="resume",
            allowed_from=frozenset({TestStatus.PAUSED}),
        )

    async def stop_test(self, test_id: str, reason: str = "") -> ABTest:
        return await self._lifecycle.transition(
            test_id, TestStatus.STOPPED, action="stop", reason=reason
        )

    async def conclude_test(
        self, test_id: str, winner: str | None = None, reason: str = ""
    ) -> ABTest:
        """Conclude with ``winner`` (a variant name); without it, the analysis' recommended
        winner (FAILED_PRECONDITION if it names none)."""
        return await self._lifecycle.conclude_test(test_id, winner, reason)

    # --- splits -----------------------------------------------------------------

    async def update_split(
        self,
        test_id: str,
        weights: Mapping[str, float] | None = None,
        *,
        traffic_split: float | None = None,
        explicit: bool = False,
        reason: str = "",
    ) -> ABTest:
        """Change the weights. ``traffic_split`` (two-variant tests) sets the treatment share."""
        return await self._splits.update_split(
            test_id, weights, traffic_split=traffic_split, explicit=explicit, reason=reason
        )

    async def set_forced_variant(self, test_id: str, unit_id: str, variant: str | None) -> ABTest:
        """Pin ``unit_id`` to ``variant`` (QA); ``variant=None`` removes the override."""
        return await self._splits.set_forced_variant(test_id, unit_id, variant)

    # --- assignment -------------------------------------------------------------

    async def get_variant(
        self, test_id: str, user_id: str | None = None
    ) -> tuple[str, Variant, bool]:
        """``(variant name, variant, forced)`` for a unit. Non-running tests answer control
        (the winner once concluded)."""
        return await self._assignment.get_variant(test_id, user_id)

    def hash_variant(self, test: ABTest, user_id: str) -> str:
        """The variant HASH_BASED assignment gives ``user_id`` (QA overrides first)."""
        return hash_variant(test, user_id)

    # --- recording --------------------------------------------------------------

    async def record_requests(self, test_id: str, records: Sequence[RequestRecord]) -> int:
        """Fold a batch of requests into the test's windows (one transaction)."""
        return await self._recording.record_requests(test_id, records)

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
        return await self._recording.record_outcome(
            test_id, user_id, success=success, custom_metrics=custom_metrics, variant=variant,
            timestamp=timestamp,
        )

    async def set_covariates(self, test_id: str, values: Mapping[str, float]) -> int:
        """Each unit's pre-experiment covariate (unit id -> number) for CUPED; returns how
        many were stored."""
        return await self._recording.set_covariates(test_id, values)

    # --- analysis ---------------------------------------------------------------

    async def analysis(
        self,
        test_id: str,
        confidence_level: float | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> TestAnalysis:
        """The typed analysis report (:meth:`analyze_test` is its ``to_dict()``). A look over
        the whole test that finds a guardrail violated stops a RUNNING test."""
        result = await self._reporting.analyze(test_id, confidence_level, since=since,
                                               until=until)
        if since is None and until is None and await self._watch.enforce(result):
            result = await self._reporting.analyze(test_id, confidence_level)
        return result

    async def check_guardrails(self) -> list[str]:
        """Check every RUNNING test's guardrails now; the ids of the tests stopped."""
        return await self._watch.check()

    async def reweight_bandits(self) -> list[str]:
        """Reweight every RUNNING multi-armed bandit test whose interval has passed (the
        server's loop does this by itself); the ids of the tests reweighted."""
        return await self._bandits.check()

    async def reweight_bandit(self, test_id: str) -> Reweighting | None:
        """Reweight one RUNNING bandit test now, interval or not (None: its burn-in is not
        over); FailedPrecondition for any other test."""
        test = await self.get_test(test_id)
        if test.bandit is None:
            raise FailedPrecondition(f"A/B test {test_id!r} is not a multi_armed_bandit test")
        if test.status != TestStatus.RUNNING:
            raise FailedPrecondition(
                f"A/B test {test_id!r} is {test.status.value}; only a running bandit is "
                "reweighted")
        return await self._bandits.reweight(test_id, force=True)

    async def reweight_bandit_test(self, test_id: str) -> ABTest:
        """:meth:`reweight_bandit`, answering the test (unchanged while its burn-in lasts)."""
        await self.reweight_bandit(test_id)
        return await self.get_test(test_id)

    def start(self) -> None:
        """Start the periodic guardrail watch and the bandit loop (the server calls it)."""
        self._watch.start()
        self._bandits.start()

    async def stop(self) -> None:
        await self._bandits.stop()
        await self._watch.stop()

    async def analyze_test(
        self,
        test_id: str,
        confidence_level: float | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> dict[str, Any]:
        """The analysis report as a JSON-safe dict. Also records this look's mSPRT p-values,
        so that the reported always-valid p-value is the running minimum over every look.
        With ``since`` / ``until`` only the windows starting in that range are analysed
        (and the running minimum is neither used nor updated)."""
        result = await self.analysis(test_id, confidence_level, since=since, until=until)
        return result.to_dict()

    # --- routing ----------------------------------------------------------------

    async def active_routes(self, conn: AsyncConnection) -> list[ModelRoute]:
        """Running tests as routes, every one of them (a model's tests are grouped by
        layer in the routing table; oldest first, see :func:`routes.active_routes`)."""
        return await routes.active_routes(conn, to_us(self.clock.now()))
