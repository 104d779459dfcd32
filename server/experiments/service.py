"""ExperimentService: A/B tests, their assignment, recording and analysis (transport-free).

* Every lifecycle change is one audited transaction and, after commit, invalidates the
  routing table (running tests are routes, :meth:`active_routes`).
* Traffic is stored only as summed :class:`~neural.mlops.v1.traffic.VariantStats` per
  (test, variant, one-minute window) through :mod:`neural.mlops.server.traffic`; no
  per-request rows. ``record_request`` and the sidecars' metric batches feed the same
  windows (route_id = test_id).
* Late outcomes (:meth:`record_outcome`) are credited by unit id. For HASH_BASED tests the
  unit's variant is recomputed from the hash (and the QA overrides), so nothing per unit
  is stored. RANDOM and ROUND_ROBIN assignments are not reproducible and are not stored
  either: an outcome for such a test must name its ``variant``, otherwise the call is
  rejected (FAILED_PRECONDITION) rather than guessed.
* The split of a RUNNING or PAUSED test may only change stickily (no unit changes arm;
  with two variants: the treatment share only grows) unless ``explicit=True``; every
  change is kept in ``split_history`` and audited.
* ``get_variant`` of a test that is not RUNNING returns control (the winner once
  concluded): traffic outside a running test goes to the safe arm.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from neural.mlops.server import traffic
from neural.mlops.server import validation as v
from neural.mlops.server.audit.events import EventType
from neural.mlops.server.clock import Clock, SystemClock, from_us, to_us
from neural.mlops.server.errors import FailedPrecondition, InvalidArgument, NotFound
from neural.mlops.server.experiments.analysis import (
    DECISION_FIXED,
    DECISION_SEQUENTIAL,
    analyze,
)
from neural.mlops.server.experiments.model import (
    RECORDING,
    TRANSITIONS,
    ABTest,
    SplitChange,
    TestStatus,
    TrafficSplitStrategy,
    Variant,
)
from neural.mlops.server.identity import current_call
from neural.mlops.server.routing.model import ModelRoute, RouteVariant
from neural.mlops.server.storage import Change, Database
from neural.mlops.server.storage.schema import (
    experiments,
    model_aliases,
    model_versions,
    registered_models,
)
from neural.mlops.v1.assignment import Assigner
from neural.mlops.v1.traffic import Moments, VariantStats

log = structlog.get_logger(__name__)

MAX_VARIANTS = 16
MAX_FORCED = 1000
MAX_BATCH = 10_000
MAX_CUSTOM_METRICS = 50
DEFAULT_PAGE = 100
MAX_PAGE = 1000
CACHE_SECONDS = 1.0

_EVENTS = {
    TestStatus.RUNNING: EventType.AB_TEST_STARTED,
    TestStatus.PAUSED: EventType.AB_TEST_PAUSED,
    TestStatus.STOPPED: EventType.AB_TEST_STOPPED,
    TestStatus.CONCLUDED: EventType.AB_TEST_CONCLUDED,
}


@dataclass(slots=True)
class CreateSpec:
    """Everything create_test accepts (seed arguments first)."""

    name: str
    description: str = ""
    control_variant: str | None = None
    treatment_variant: str | None = None
    traffic_split: float | None = None
    strategy: TrafficSplitStrategy | str = TrafficSplitStrategy.HASH_BASED
    created_by: str = ""
    variants: Sequence[tuple[str, str, float]] | None = None  # (name, model_ref, weight)
    control: str = "control"
    confidence_level: float = 0.95
    minimum_detectable_effect: float = 0.05
    power: float = 0.8
    decision_rule: str = DECISION_FIXED
    sequential_tau: float = 0.02
    model_name: str = ""


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


def _model_ref(value: object, field_name: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"{field_name} must be a model reference 'name:version'", field=field_name)
    name, _, version = value.partition(":")
    v.name(name, field_name)
    if version:
        v.name(version, field_name)
    return value


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")[:40] or "test"


def _strategy(value: object) -> TrafficSplitStrategy:
    if isinstance(value, TrafficSplitStrategy):
        return value
    raw = getattr(value, "value", value)
    try:
        return TrafficSplitStrategy(str(raw).lower())
    except ValueError:
        allowed = ", ".join(s.value for s in TrafficSplitStrategy)
        raise InvalidArgument(f"strategy must be one of {allowed}, got {value!r}", field="strategy") from None


def _dump(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _row_to_test(row: Any, now_us: int) -> ABTest:
    cfg = json.loads(row.config)
    running_us = row.running_us + (
        now_us - row.resumed_us if row.status == TestStatus.RUNNING and row.resumed_us else 0
    )
    return ABTest(
        test_id=row.test_id,
        name=row.name,
        description=row.description,
        status=TestStatus(row.status),
        strategy=TrafficSplitStrategy(row.strategy),
        variants=[Variant(d["name"], d["model_ref"], float(d["weight"])) for d in json.loads(row.variants)],
        control=cfg["control"],
        model_name=row.model_name,
        created_by=row.created_by,
        created_at=from_us(row.created_us),
        started_at=from_us(row.started_us) if row.started_us is not None else None,
        ended_at=from_us(row.ended_us) if row.ended_us is not None else None,
        winner=row.winner,
        conclusion=row.conclusion,
        confidence_level=cfg["confidence_level"],
        minimum_detectable_effect=cfg["minimum_detectable_effect"],
        power=cfg["power"],
        decision_rule=cfg["decision_rule"],
        sequential_tau=cfg["sequential_tau"],
        forced_variants=json.loads(row.forced),
        split_history=[
            SplitChange(from_us(h["at_us"]), h["actor"], h["weights"], h["explicit"], h["reason"])
            for h in json.loads(row.split_history)
        ],
        running_seconds=max(running_us, 0) / 1e6,
    )


def _validate_custom(metrics: Mapping[str, float] | None, field_name: str) -> dict[str, float]:
    if metrics is None:
        return {}
    if not isinstance(metrics, Mapping):
        raise InvalidArgument(f"{field_name} must be a mapping of name to number", field=field_name)
    if len(metrics) > MAX_CUSTOM_METRICS:
        raise InvalidArgument(f"at most {MAX_CUSTOM_METRICS} custom metrics", field=field_name)
    return {v.name(k, field_name): v.finite(x, f"{field_name}.{k}") for k, x in metrics.items()}


def sticky(old: Sequence[tuple[str, float]], new: Mapping[str, float], control: str) -> bool:
    """True if no unit changes arm: every non-control variant's bucket interval grows."""
    lo_old = lo_new = 0.0
    for name, w_old in old:
        w_new = new[name]
        if name != control and (lo_new > lo_old + 1e-12 or lo_new + w_new < lo_old + w_old - 1e-12):
            return False
        lo_old += w_old
        lo_new += w_new
    return True


@dataclass(frozen=True, slots=True)
class ValidSpec:
    name: str
    description: str
    strategy: TrafficSplitStrategy
    created_by: str  # "" = the caller
    control: str
    declared: list[tuple[str, str, float]]
    ordered: list[tuple[str, str, float]]  # hash order: non-control first, control last
    confidence_level: float
    minimum_detectable_effect: float
    power: float
    decision_rule: str
    sequential_tau: float
    model_name: str


def validate_spec(spec: CreateSpec) -> ValidSpec:
    """Check every create_test argument (no I/O); the client runs it too, so embedded and
    remote callers get the same error for the same bad input."""
    name = v.text(spec.name, "name", limit=256).strip()
    if not name:
        raise InvalidArgument("name is required", field="name")
    description = v.text(spec.description, "description")
    strategy = _strategy(spec.strategy)
    created_by = v.text(spec.created_by, "created_by", limit=320).strip()
    control = v.name(spec.control or "control", "control")
    if spec.variants is not None:
        if spec.control_variant or spec.treatment_variant:
            raise InvalidArgument(
                "pass either control_variant/treatment_variant or variants, not both",
                field="variants",
            )
        declared = []
        for i, item in enumerate(spec.variants):
            try:
                vname, ref, weight = item
            except (TypeError, ValueError):
                raise InvalidArgument(
                    f"variants[{i}] must be (name, model_ref, weight)", field="variants"
                ) from None
            declared.append(
                (v.name(vname, "variants"), _model_ref(ref, "variants"), v.fraction(weight, "variants"))
            )
    else:
        if spec.control_variant is None or spec.treatment_variant is None:
            raise InvalidArgument(
                "control_variant and treatment_variant are required", field="control_variant"
            )
        split = 0.5 if spec.traffic_split is None else v.fraction(spec.traffic_split, "traffic_split")
        declared = [
            (control, _model_ref(spec.control_variant, "control_variant"), 1.0 - split),
            ("treatment", _model_ref(spec.treatment_variant, "treatment_variant"), split),
        ]
        if control == "treatment":
            raise InvalidArgument("the control variant cannot be named 'treatment'", field="control")
    names = [d[0] for d in declared]
    if len(declared) < 2 or len(declared) > MAX_VARIANTS:
        raise InvalidArgument(f"a test needs 2 to {MAX_VARIANTS} variants", field="variants")
    if len(set(names)) != len(names):
        raise InvalidArgument(f"variant names must be unique: {names}", field="variants")
    if control not in names:
        raise InvalidArgument(f"no variant is named {control!r} (the control)", field="control")
    total = math.fsum(d[2] for d in declared)
    if abs(total - 1.0) > 1e-9:
        raise InvalidArgument(f"variant weights must sum to 1, got {total!r}", field="variants")
    ordered = [d for d in declared if d[0] != control] + [d for d in declared if d[0] == control]
    conf = v.finite(spec.confidence_level, "confidence_level")
    if not 0.5 <= conf < 1.0:
        raise InvalidArgument("confidence_level must be in [0.5, 1)", field="confidence_level")
    mde = v.finite(spec.minimum_detectable_effect, "minimum_detectable_effect")
    if not 0.0 < mde <= 10.0:
        raise InvalidArgument(
            "minimum_detectable_effect (a relative lift, 0.05 = 5%) must be in (0, 10]",
            field="minimum_detectable_effect",
        )
    power = v.finite(spec.power, "power")
    if not 0.5 <= power < 1.0:
        raise InvalidArgument("power must be in [0.5, 1)", field="power")
    if spec.decision_rule not in (DECISION_FIXED, DECISION_SEQUENTIAL):
        raise InvalidArgument(
            f"decision_rule must be {DECISION_FIXED!r} or {DECISION_SEQUENTIAL!r}",
            field="decision_rule",
        )
    tau = v.finite(spec.sequential_tau, "sequential_tau")
    if not 0.0 < tau <= 1.0:
        raise InvalidArgument("sequential_tau must be in (0, 1]", field="sequential_tau")
    control_ref = next(d[1] for d in declared if d[0] == control)
    model_name = v.name(spec.model_name, "model_name") if spec.model_name else control_ref.split(":")[0]
    return ValidSpec(name, description, strategy, created_by, control, declared, ordered, conf, mde,
                     power, spec.decision_rule, tau, model_name)


class ExperimentService:
    """A/B tests. Also a :class:`~neural.mlops.server.routing.model.RouteProvider`."""

    def __init__(self, db: Database, *, clock: Clock | None = None, routing: Any = None) -> None:
        self.db = db
        self.clock: Clock = clock or SystemClock()
        self.routing = routing
        # Per-process assigners (RANDOM / ROUND_ROBIN keep state), keyed by test and row version.
        self._assigners: dict[str, tuple[int, Assigner]] = {}
        # Hot-path cache of test rows for get_variant / record_requests: dropped on every
        # local change; a change made by ANOTHER process sharing the store is seen within
        # CACHE_SECONDS.
        self._rows: dict[str, tuple[float, Any, ABTest]] = {}

    # --- helpers ----------------------------------------------------------------

    def _now_us(self) -> int:
        return to_us(self.clock.now())

    def _after_commit(self, ch: Change, test_id: str) -> None:
        self._rows.pop(test_id, None)
        ch.on_commit(lambda: self._rows.pop(test_id, None))
        if self.routing is not None:
            ch.on_commit(self.routing.invalidate)

    async def _cached(self, test_id: str) -> tuple[Any, ABTest]:
        """The test's row and parsed test (``running_seconds`` may be up to CACHE_SECONDS old)."""
        hit = self._rows.get(test_id)
        now = self.clock.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1], hit[2]
        async with self.db.read() as conn:
            row = await self._load_row(conn, test_id)
        test = _row_to_test(row, self._now_us())
        if len(self._rows) > 10_000:
            self._rows.clear()
        self._rows[test_id] = (now + CACHE_SECONDS, row, test)
        return row, test

    async def _check_refs(self, conn: AsyncConnection, refs: Sequence[tuple[str, str]]) -> None:
        """A ref to a model this store's registry knows must name one of its versions (or
        aliases); refs to models registered elsewhere are taken as given."""
        for field_name, ref in refs:
            name, _, version = ref.partition(":")
            known = (await conn.execute(
                sa.select(registered_models.c.name).where(registered_models.c.name == name))).first()
            if known is None or not version:
                continue
            found = (await conn.execute(sa.select(model_versions.c.id).where(
                model_versions.c.name == name, model_versions.c.version == version))).first()
            if found is None:
                found = (await conn.execute(sa.select(model_aliases.c.version).where(
                    model_aliases.c.name == name, model_aliases.c.alias == version))).first()
            if found is None:
                raise NotFound(f"{field_name}: model {name!r} has no version or alias {version!r} "
                               "in the registry", field=field_name)

    async def _load_row(self, conn: AsyncConnection, test_id: str, *, lock: bool = False) -> Any:
        if not isinstance(test_id, str) or not test_id:
            raise InvalidArgument("test_id is required", field="test_id")
        query = sa.select(experiments).where(experiments.c.test_id == test_id)
        if lock:
            query = query.with_for_update()
        row = (await conn.execute(query)).first()
        if row is None:
            raise NotFound(f"A/B test {test_id!r} not found")
        return row

    def _assigner(self, test: ABTest, version: int) -> Assigner:
        cached = self._assigners.get(test.test_id)
        if cached is not None and cached[0] == version:
            return cached[1]
        a = Assigner(
            test.test_id,
            [(x.name, x.weight) for x in test.variants],
            test.strategy.assignment,
            forced=test.forced_variants,
        )
        self._assigners[test.test_id] = (version, a)
        return a

    # --- lifecycle --------------------------------------------------------------

    async def create_test(self, spec: CreateSpec) -> ABTest:
        ok = validate_spec(spec)
        name, description, strategy, control = ok.name, ok.description, ok.strategy, ok.control
        declared, ordered, model_name = ok.declared, ok.ordered, ok.model_name
        conf, mde, power, tau = ok.confidence_level, ok.minimum_detectable_effect, ok.power, ok.sequential_tau
        created_by = ok.created_by or current_call().actor
        now_us = self._now_us()
        stamp = from_us(now_us).strftime("%Y%m%d_%H%M%S")
        test_id = f"test_{stamp}_{_slug(name)}_{uuid.uuid4().hex[:6]}"
        variants_json = [{"name": n, "model_ref": r, "weight": w} for n, r, w in ordered]
        config = {
            "control": control,
            "confidence_level": conf,
            "minimum_detectable_effect": mde,
            "power": power,
            "decision_rule": spec.decision_rule,
            "sequential_tau": tau,
        }
        history = [
            {
                "at_us": now_us,
                "actor": created_by,
                "weights": {n: w for n, _, w in ordered},
                "explicit": False,
                "reason": "created",
            }
        ]
        ref_fields = (
            [("variants", r) for _, r, _ in declared]
            if spec.variants is not None
            else [("control_variant", declared[0][1]), ("treatment_variant", declared[1][1])]
        )
        async with self.db.change() as ch:
            await self._check_refs(ch.conn, ref_fields)
            await ch.conn.execute(
                sa.insert(experiments).values(
                    test_id=test_id,
                    name=name,
                    description=description,
                    status=TestStatus.DRAFT.value,
                    strategy=strategy.value,
                    model_name=model_name,
                    variants=_dump(variants_json),
                    config=_dump(config),
                    forced=_dump({}),
                    split_history=_dump(history),
                    created_by=created_by,
                    winner="",
                    conclusion="",
                    created_us=now_us,
                    updated_us=now_us,
                    started_us=None,
                    ended_us=None,
                    running_us=0,
                    resumed_us=None,
                )
            )
            ch.record(
                EventType.AB_TEST_CREATED,
                resource_type="ab_test",
                resource_id=test_id,
                action="create",
                details={"after": {"name": name, "variants": variants_json, "strategy": strategy.value,
                                   "model_name": model_name, **config}},
                actor=created_by,
            )
            row = await self._load_row(ch.conn, test_id)
        log.info("ab test created", test_id=test_id, name=name, strategy=strategy.value)
        return _row_to_test(row, now_us)

    async def get_test(self, test_id: str) -> ABTest:
        async with self.db.read() as conn:
            return _row_to_test(await self._load_row(conn, test_id), self._now_us())

    async def list_tests(
        self, status: TestStatus | str | None = None, *, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[ABTest], str]:
        size = DEFAULT_PAGE if page_size <= 0 else min(page_size, MAX_PAGE)
        query = sa.select(experiments).order_by(experiments.c.created_us, experiments.c.test_id)
        if status:
            try:
                query = query.where(experiments.c.status == TestStatus(str(getattr(status, "value", status))).value)
            except ValueError:
                raise InvalidArgument(f"unknown status {status!r}", field="status") from None
        offset = 0
        if page_token:
            try:
                offset = int(page_token)
            except ValueError:
                raise InvalidArgument("page_token is not valid", field="page_token") from None
        now_us = self._now_us()
        async with self.db.read() as conn:
            rows = (await conn.execute(query.offset(offset).limit(size + 1))).all()
        tests = [_row_to_test(r, now_us) for r in rows[:size]]
        return tests, str(offset + size) if len(rows) > size else ""

    async def _transition(
        self, test_id: str, target: TestStatus, *, action: str, reason: str = "",
        winner: str | None = None, allowed_from: frozenset[TestStatus] | None = None,
    ) -> ABTest:
        reason = v.text(reason, "reason")
        now_us = self._now_us()
        async with self.db.change() as ch:
            row = await self._load_row(ch.conn, test_id, lock=True)
            current = TestStatus(row.status)
            sources = allowed_from or frozenset(s for s, targets in TRANSITIONS.items() if target in targets)
            if current not in sources or target not in TRANSITIONS[current]:
                raise FailedPrecondition(
                    f"cannot {action} A/B test {test_id!r}: it is {current.value}"
                )
            values: dict[str, Any] = {"status": target.value, "updated_us": now_us}
            if current == TestStatus.RUNNING and row.resumed_us is not None:
                values["running_us"] = row.running_us + max(now_us - row.resumed_us, 0)
                values["resumed_us"] = None
            if target == TestStatus.RUNNING:
                values["resumed_us"] = now_us
                if row.started_us is None:
                    values["started_us"] = now_us
            if target in (TestStatus.STOPPED, TestStatus.CONCLUDED) and row.ended_us is None:
                values["ended_us"] = now_us
            if target == TestStatus.CONCLUDED:
                values["winner"] = winner or ""
                values["conclusion"] = reason
            await ch.conn.execute(
                sa.update(experiments).where(experiments.c.test_id == test_id).values(**values)
            )
            event = EventType.AB_TEST_RESUMED if action == "resume" else _EVENTS[target]
            details: dict[str, Any] = {"before": {"status": current.value}, "after": {"status": target.value}}
            if reason:
                details["reason"] = reason
            if winner:
                details["after"]["winner"] = winner
            ch.record(event, resource_type="ab_test", resource_id=test_id, action=action, details=details)
            self._after_commit(ch, test_id)
            row = await self._load_row(ch.conn, test_id)
        log.info("ab test " + action, test_id=test_id, status=target.value)
        return _row_to_test(row, now_us)

    async def start_test(self, test_id: str) -> ABTest:
        return await self._transition(
            test_id, TestStatus.RUNNING, action="start", allowed_from=frozenset({TestStatus.DRAFT})
        )

    async def pause_test(self, test_id: str, reason: str = "") -> ABTest:
        return await self._transition(test_id, TestStatus.PAUSED, action="pause", reason=reason)

    async def resume_test(self, test_id: str) -> ABTest:
        return await self._transition(
            test_id, TestStatus.RUNNING, action="resume", allowed_from=frozenset({TestStatus.PAUSED})
        )

    async def stop_test(self, test_id: str, reason: str = "") -> ABTest:
        return await self._transition(test_id, TestStatus.STOPPED, action="stop", reason=reason)

    async def conclude_test(self, test_id: str, winner: str | None = None, reason: str = "") -> ABTest:
        test = await self.get_test(test_id)
        if winner:
            if test.variant(winner) is None:
                raise InvalidArgument(
                    f"winner {winner!r} is not a variant of {test_id!r} "
                    f"({', '.join(x.name for x in test.variants)})",
                    field="winner",
                )
        else:
            if test.status not in TRANSITIONS or TestStatus.CONCLUDED not in TRANSITIONS[test.status]:
                raise FailedPrecondition(f"cannot conclude A/B test {test_id!r}: it is {test.status.value}")
            report = await self.analyze_test(test_id)
            winner = report["recommendation"]["winner"]
            if not winner:
                raise FailedPrecondition(
                    f"the analysis names no winner yet ({report['recommendation']['reason']}); "
                    "pass winner= to decide anyway"
                )
            reason = reason or report["recommendation"]["reason"]
        return await self._transition(test_id, TestStatus.CONCLUDED, action="conclude", reason=reason, winner=winner)

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
        reason = v.text(reason, "reason")
        now_us = self._now_us()
        async with self.db.change() as ch:
            row = await self._load_row(ch.conn, test_id, lock=True)
            test = _row_to_test(row, now_us)
            if test.status in (TestStatus.STOPPED, TestStatus.CONCLUDED):
                raise FailedPrecondition(f"A/B test {test_id!r} is {test.status.value}; its split is final")
            if traffic_split is not None:
                if weights is not None:
                    raise InvalidArgument("pass weights or traffic_split, not both", field="weights")
                if len(test.variants) != 2:
                    raise InvalidArgument("traffic_split needs a two-variant test; pass weights", field="traffic_split")
                split = v.fraction(traffic_split, "traffic_split")
                treatment = next(x.name for x in test.variants if x.name != test.control)
                new = {treatment: split, test.control: 1.0 - split}
            else:
                if not isinstance(weights, Mapping):
                    raise InvalidArgument("weights is required", field="weights")
                new = {str(k): v.fraction(w, f"weights.{k}") for k, w in weights.items()}
            names = [x.name for x in test.variants]
            if set(new) != set(names):
                raise InvalidArgument(f"weights must name exactly the variants {names}", field="weights")
            if abs(math.fsum(new.values()) - 1.0) > 1e-9:
                raise InvalidArgument("weights must sum to 1", field="weights")
            old = [(x.name, x.weight) for x in test.variants]
            is_sticky = sticky(old, new, test.control)
            if test.status in (TestStatus.RUNNING, TestStatus.PAUSED) and not is_sticky and not explicit:
                raise FailedPrecondition(
                    "this split change would move units that are already assigned to another arm "
                    "(a running test's split may only grow); pass explicit=True to do it anyway"
                )
            variants_json = [{"name": x.name, "model_ref": x.model_ref, "weight": new[x.name]} for x in test.variants]
            history = json.loads(row.split_history)
            actor = current_call().actor
            history.append({"at_us": now_us, "actor": actor, "weights": new,
                            "explicit": not is_sticky, "reason": reason})
            await ch.conn.execute(
                sa.update(experiments)
                .where(experiments.c.test_id == test_id)
                .values(variants=_dump(variants_json), split_history=_dump(history), updated_us=now_us)
            )
            ch.record(
                EventType.AB_TEST_UPDATED,
                resource_type="ab_test",
                resource_id=test_id,
                action="update_split",
                details={"before": {"weights": dict(old)}, "after": {"weights": new},
                         "sticky": is_sticky, "reason": reason},
            )
            self._after_commit(ch, test_id)
            row = await self._load_row(ch.conn, test_id)
        return _row_to_test(row, now_us)

    async def set_forced_variant(self, test_id: str, unit_id: str, variant: str | None) -> ABTest:
        """Pin ``unit_id`` to ``variant`` (QA); ``variant=None`` removes the override."""
        unit_id = v.text(unit_id, "unit_id", limit=256)
        if not unit_id:
            raise InvalidArgument("unit_id is required", field="unit_id")
        now_us = self._now_us()
        async with self.db.change() as ch:
            row = await self._load_row(ch.conn, test_id, lock=True)
            test = _row_to_test(row, now_us)
            forced = dict(test.forced_variants)
            before = forced.get(unit_id)
            if variant:
                if test.variant(variant) is None:
                    raise InvalidArgument(f"{variant!r} is not a variant of {test_id!r}", field="variant")
                if unit_id not in forced and len(forced) >= MAX_FORCED:
                    raise InvalidArgument(f"at most {MAX_FORCED} forced units per test", field="unit_id")
                forced[unit_id] = variant
            else:
                forced.pop(unit_id, None)
            await ch.conn.execute(
                sa.update(experiments)
                .where(experiments.c.test_id == test_id)
                .values(forced=_dump(forced), updated_us=now_us)
            )
            ch.record(
                EventType.AB_TEST_UPDATED,
                resource_type="ab_test",
                resource_id=test_id,
                action="force_variant",
                details={"unit_id": unit_id, "before": before, "after": variant or None},
            )
            self._after_commit(ch, test_id)
            row = await self._load_row(ch.conn, test_id)
        return _row_to_test(row, now_us)

    # --- assignment -------------------------------------------------------------

    async def get_variant(self, test_id: str, user_id: str | None = None) -> tuple[str, Variant, bool]:
        """``(variant name, variant, forced)`` for a unit. Non-running tests answer control
        (the winner once concluded)."""
        if user_id is not None and not isinstance(user_id, str):
            user_id = str(user_id)
        row, test = await self._cached(test_id)
        if test.status != TestStatus.RUNNING:
            name = test.winner or test.control
            return name, test.variant(name), False  # type: ignore[return-value]
        if user_id is not None and user_id in test.forced_variants:
            name = test.forced_variants[user_id]
            return name, test.variant(name), True  # type: ignore[return-value]
        if test.strategy == TrafficSplitStrategy.HASH_BASED and not user_id:
            raise InvalidArgument("user_id is required for a HASH_BASED test", field="user_id")
        name = self._assigner(test, row.updated_us).choose(user_id or None)
        return name, test.variant(name), False  # type: ignore[return-value]

    def hash_variant(self, test: ABTest, user_id: str) -> str:
        if user_id in test.forced_variants:
            return test.forced_variants[user_id]
        return Assigner(test.test_id, [(x.name, x.weight) for x in test.variants]).choose(user_id)

    # --- recording --------------------------------------------------------------

    async def record_requests(self, test_id: str, records: Sequence[RequestRecord]) -> int:
        """Fold a batch of requests into the test's windows (one transaction)."""
        if len(records) > MAX_BATCH:
            raise InvalidArgument(f"at most {MAX_BATCH} records per batch", field="records")
        now_us = self._now_us()
        _, test = await self._cached(test_id)
        if test.status not in RECORDING:
            raise FailedPrecondition(
                f"A/B test {test_id!r} is {test.status.value}; requests are recorded while it is "
                "running, paused or stopped"
            )
        parts: dict[tuple[str, int], VariantStats] = {}
        for i, rec in enumerate(records):
            where = f"records[{i}]" if len(records) > 1 else "variant"
            variant = rec.variant
            if not variant:
                if not rec.user_id:
                    raise InvalidArgument("variant (or user_id) is required", field=where)
                if test.strategy != TrafficSplitStrategy.HASH_BASED:
                    raise InvalidArgument(
                        "variant is required: RANDOM/ROUND_ROBIN assignments cannot be recomputed",
                        field=where,
                    )
                variant = self.hash_variant(test, str(rec.user_id))
            if test.variant(variant) is None:
                raise InvalidArgument(
                    f"{variant!r} is not a variant of {test_id!r} "
                    f"({', '.join(x.name for x in test.variants)})",
                    field=where,
                )
            custom = _validate_custom(rec.custom_metrics, "custom_metrics")
            latency = None
            if rec.latency is not None:
                latency = v.finite(rec.latency, "latency")
                if latency < 0:
                    raise InvalidArgument("latency must be >= 0 (seconds)", field="latency")
            if rec.success is not None and not isinstance(rec.success, bool):
                raise InvalidArgument("success must be true or false", field="success")
            if rec.timestamp is not None and not isinstance(rec.timestamp, datetime):
                raise InvalidArgument("timestamp must be a datetime", field="timestamp")
            ts = to_us(rec.timestamp) if rec.timestamp is not None else now_us
            key = (variant, traffic.window_start(ts))
            stats = parts.setdefault(key, VariantStats())
            stats.observe(
                success=rec.success, latency=latency, error=bool(rec.error), custom=custom,
                status_code=rec.status_code,
            )
        async with self.db.change(audited=False) as ch:
            for (variant, start), stats in parts.items():
                await traffic.apply(ch.conn, test_id, variant, start, stats, now_us=now_us)
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
        user_id = v.text(user_id, "user_id", limit=256)
        if not user_id:
            raise InvalidArgument("user_id is required", field="user_id")
        now_us = self._now_us()
        async with self.db.read() as conn:
            test = _row_to_test(await self._load_row(conn, test_id), now_us)
        if test.status not in RECORDING:
            raise FailedPrecondition(f"A/B test {test_id!r} is {test.status.value}; outcomes are not recorded")
        if variant:
            if test.variant(variant) is None:
                raise InvalidArgument(f"{variant!r} is not a variant of {test_id!r}", field="variant")
        elif test.strategy == TrafficSplitStrategy.HASH_BASED:
            variant = self.hash_variant(test, user_id)
        else:
            raise FailedPrecondition(
                f"A/B test {test_id!r} uses {test.strategy.value}: a unit's variant cannot be "
                "recomputed, so pass variant= with the outcome"
            )
        custom = _validate_custom(custom_metrics, "custom_metrics")
        stats = VariantStats(successes=1 if success else 0)
        for k, x in custom.items():
            stats.custom.setdefault(k, Moments()).add(x)
        if timestamp is not None and not isinstance(timestamp, datetime):
            raise InvalidArgument("timestamp must be a datetime", field="timestamp")
        ts = to_us(timestamp) if timestamp is not None else now_us
        async with self.db.change(audited=False) as ch:
            await traffic.apply(ch.conn, test_id, variant, traffic.window_start(ts), stats, now_us=now_us)
        return variant

    # --- analysis ---------------------------------------------------------------

    async def analyze_test(
        self,
        test_id: str,
        confidence_level: float | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> dict[str, Any]:
        """The analysis report. Also records this look's mSPRT p-values, so that the
        reported always-valid p-value is the running minimum over every look. With
        ``since`` / ``until`` only the windows starting in that range are analysed (and the
        running minimum is neither used nor updated)."""
        if confidence_level is not None:
            confidence_level = v.finite(confidence_level, "confidence_level")
            if not 0.5 <= confidence_level < 1.0:
                raise InvalidArgument("confidence_level must be in [0.5, 1)", field="confidence_level")
        for field_name, value in (("since", since), ("until", until)):
            if value is not None and not isinstance(value, datetime):
                raise InvalidArgument(f"{field_name} must be a datetime", field=field_name)
        since_us = to_us(since) if since is not None else None
        until_us = to_us(until) if until is not None else None
        if since_us is not None and until_us is not None and until_us <= since_us:
            raise InvalidArgument("until must be after since", field="until")
        ranged = since_us is not None or until_us is not None
        now_us = self._now_us()
        async with self.db.read() as conn:
            row = await self._load_row(conn, test_id)
            totals = await traffic.totals(conn, test_id, since_us, until_us)
        test = _row_to_test(row, now_us)
        floor = {} if ranged else {k: float(x) for k, x in json.loads(row.sequential_state or "{}").items()}
        report = analyze(
            [(x.name, x.weight) for x in test.variants],
            totals,
            control=test.control,
            config=test.analysis_config(),
            confidence_level=confidence_level,
            elapsed_seconds=test.running_seconds or None,
            sequential_floor=floor,
        )
        lower = {
            name: comp["sequential"]["p_value_current"]
            for name, comp in report["comparisons"].items()
            if comp["sequential"]["p_value_current"] is not None
            and comp["sequential"]["p_value_current"] < floor.get(name, 1.0)
        }
        if lower and test.status in RECORDING and not ranged:
            await self._lower_floor(test_id, lower)
        return {
            "test_id": test.test_id,
            "since": since.isoformat() if since is not None else None,
            "until": until.isoformat() if until is not None else None,
            "name": test.name,
            "status": test.status.value,
            "strategy": test.strategy.value,
            "running_seconds": test.running_seconds,
            **report,
        }

    async def _lower_floor(self, test_id: str, lower: Mapping[str, float]) -> None:
        async with self.db.change(audited=False) as ch:
            row = await self._load_row(ch.conn, test_id, lock=True)
            state = json.loads(row.sequential_state or "{}")
            for name, p in lower.items():
                state[name] = min(float(state.get(name, 1.0)), p)
            await ch.conn.execute(
                sa.update(experiments)
                .where(experiments.c.test_id == test_id)
                .values(sequential_state=_dump(state))
            )

    # --- routing ----------------------------------------------------------------

    async def active_routes(self, conn: AsyncConnection) -> list[ModelRoute]:
        """Running tests as routes (oldest first: the routing table keeps the first route per model)."""
        rows = (
            await conn.execute(
                sa.select(experiments)
                .where(experiments.c.status == TestStatus.RUNNING.value)
                .order_by(experiments.c.started_us, experiments.c.test_id)
            )
        ).all()
        now_us = self._now_us()
        routes = []
        for row in rows:
            test = _row_to_test(row, now_us)
            routes.append(
                ModelRoute(
                    model_name=test.model_name,
                    route_id=test.test_id,
                    kind="experiment",
                    strategy=test.strategy.assignment.value,
                    variants=tuple(
                        RouteVariant(
                            name=x.name, weight=x.weight, model_name=x.model_name, model_version=x.model_version
                        )
                        for x in test.variants
                    ),
                    forced_variants=tuple(sorted(test.forced_variants.items())),
                )
            )
        return routes
