"""A test's life: created (DRAFT), started, paused, resumed, stopped, concluded.

Every change is one audited transaction (:meth:`Database.change`) and, after commit,
rebuilds routing (running tests are routes). Moves follow
:data:`~neural.mlops.server.experiments.model.TRANSITIONS`.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from neural.mlops.server import pagination
from neural.mlops.server import validation as v
from neural.mlops.server.audit.events import EventType
from neural.mlops.server.clock import Clock, from_us, to_us
from neural.mlops.server.errors import FailedPrecondition, InvalidArgument, NotFound
from neural.mlops.server.experiments import store
from neural.mlops.server.experiments.cache import TestCache
from neural.mlops.server.experiments.layers import Holder, layer_config, place, steers
from neural.mlops.server.experiments.model import TRANSITIONS, ABTest, TestStatus
from neural.mlops.server.experiments.reporting import Reporting
from neural.mlops.server.experiments.spec import CreateSpec, ValidSpec, validate_spec
from neural.mlops.server.identity import current_call
from neural.mlops.server.registry.port import RegistryPort
from neural.mlops.server.storage import Database

log = structlog.get_logger(__name__)


_EVENTS = {
    TestStatus.RUNNING: EventType.AB_TEST_STARTED,
    TestStatus.PAUSED: EventType.AB_TEST_PAUSED,
    TestStatus.STOPPED: EventType.AB_TEST_STOPPED,
    TestStatus.CONCLUDED: EventType.AB_TEST_CONCLUDED,
}


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")[:40] or "test"


class Lifecycle:
    def __init__(self, db: Database, clock: Clock, cache: TestCache,
                 registry: RegistryPort | None, reporting: Reporting) -> None:
        self._db = db
        self._clock = clock
        self._cache = cache
        self._registry = registry
        self._reporting = reporting

    async def create_test(self, spec: CreateSpec) -> ABTest:
        ok = validate_spec(spec)
        created_by = ok.created_by or current_call().actor
        now_us = to_us(self._clock.now())
        stamp = from_us(now_us).strftime("%Y%m%d_%H%M%S")
        test_id = f"test_{stamp}_{_slug(ok.name)}_{uuid.uuid4().hex[:6]}"
        variants_json = [{"name": n, "model_ref": r, "weight": w} for n, r, w in ok.ordered]
        config = {
            "control": ok.control,
            "confidence_level": ok.confidence_level,
            "minimum_detectable_effect": ok.minimum_detectable_effect,
            "power": ok.power,
            "decision_rule": ok.decision_rule,
            "sequential_tau": ok.sequential_tau,
            "guardrails": [g.to_dict() for g in ok.guardrails],
            "sequential_tuning": ok.sequential_tuning,
            "srm_threshold": ok.srm_threshold,
            "multiple_testing": ok.multiple_testing,
            "prior_mean": ok.prior_mean,
            "prior_sd": ok.prior_sd,
        }
        if ok.bandit is not None:
            config["bandit"] = ok.bandit.to_dict()
        config.update(layer_config(ok.layer, ok.model_name))
        async with self._db.change() as ch:
            await self._check_refs(ch.conn, ok.ref_fields(spec.variants is not None))
            await store.insert(ch.conn, **_new_row(ok, test_id, variants_json, config,
                                                   created_by, now_us))
            ch.record(
                EventType.AB_TEST_CREATED,
                resource_type="ab_test",
                resource_id=test_id,
                action="create",
                details={"after": {"name": ok.name, "variants": variants_json,
                                   "strategy": ok.strategy.value, "model_name": ok.model_name,
                                   **config}},
                actor=created_by,
            )
            row = await store.load(ch.conn, test_id)
        log.info("ab test created", test_id=test_id, name=ok.name, strategy=ok.strategy.value)
        return store.to_test(row, now_us)

    async def _check_refs(self, conn: AsyncConnection, refs: Sequence[tuple[str, str]]) -> None:
        """A ref to a model this store's registry knows must name one of its versions (or
        aliases); refs to models registered elsewhere are taken as given."""
        if self._registry is None:
            return
        for field_name, ref in refs:
            name, _, version = ref.partition(":")
            if not version or not await self._registry.model_exists(conn, name):
                continue
            # A ref names a version or an alias bare ('m:3', 'm:prod'); the port reads a
            # leading '@' as "alias", which a ref never means.
            if not version.startswith("@") and await self._registry.version_exists(
                conn, name, version
            ):
                continue
            if not await self._registry.version_exists(conn, name, "@" + version):
                raise NotFound(f"{field_name}: model {name!r} has no version or alias "
                               f"{version!r} in the registry", field=field_name)

    async def get_test(self, test_id: str) -> ABTest:
        async with self._db.read() as conn:
            return store.to_test(await store.load(conn, test_id), to_us(self._clock.now()))

    async def list_tests(
        self, status: TestStatus | str | None = None, *, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[ABTest], str]:
        size = pagination.page_size(page_size)
        wanted = None
        if status:
            try:
                wanted = TestStatus(str(getattr(status, "value", status)))
            except ValueError:
                raise InvalidArgument(f"unknown status {status!r}", field="status") from None
        after = pagination.decode_key(page_token, "tests", (int, str))
        now_us = to_us(self._clock.now())
        async with self._db.read() as conn:
            rows = await store.page(
                conn, wanted, None if after is None else (int(after[0]), str(after[1])), size + 1)
        tests = [store.to_test(r, now_us) for r in rows[:size]]
        keys = [(r.created_us, r.test_id) for r in rows]
        return tests, pagination.next_token("tests", keys, size)

    async def transition(
        self, test_id: str, target: TestStatus, *, action: str, reason: str = "",
        winner: str | None = None, allowed_from: frozenset[TestStatus] | None = None,
    ) -> ABTest:
        """Move the test to ``target`` (from ``allowed_from``, default: any status that may)."""
        reason = v.text(reason, "reason")
        now_us = to_us(self._clock.now())
        async with self._db.change() as ch:
            row = await store.load(ch.conn, test_id, lock=True)
            current = TestStatus(row.status)
            sources = allowed_from or frozenset(
                s for s, targets in TRANSITIONS.items() if target in targets
            )
            if current not in sources or target not in TRANSITIONS[current]:
                raise FailedPrecondition(
                    f"cannot {action} A/B test {test_id!r}: it is {current.value}"
                )
            values = _moved(row, current, target, winner, reason, now_us)
            if target == TestStatus.RUNNING:
                values["config"] = await _placed(ch.conn, row, now_us)
            await store.update(ch.conn, test_id, **values)
            event = EventType.AB_TEST_RESUMED if action == "resume" else _EVENTS[target]
            details: dict[str, Any] = {"before": {"status": current.value},
                                       "after": {"status": target.value}}
            if reason:
                details["reason"] = reason
            if winner:
                details["after"]["winner"] = winner
            ch.record(event, resource_type="ab_test", resource_id=test_id, action=action,
                      details=details)
            self._cache.changed(ch, test_id)
            row = await store.load(ch.conn, test_id)
        log.info("ab test " + action, test_id=test_id, status=target.value)
        return store.to_test(row, now_us)

    async def conclude_test(self, test_id: str, winner: str | None, reason: str) -> ABTest:
        """Conclude with ``winner``; without it, with the analysis' recommended winner."""
        test = await self.get_test(test_id)
        if winner:
            if test.variant(winner) is None:
                raise InvalidArgument(
                    f"winner {winner!r} is not a variant of {test_id!r} "
                    f"({', '.join(x.name for x in test.variants)})",
                    field="winner",
                )
        else:
            if TestStatus.CONCLUDED not in TRANSITIONS.get(test.status, frozenset()):
                raise FailedPrecondition(
                    f"cannot conclude A/B test {test_id!r}: it is {test.status.value}"
                )
            rec = (await self._reporting.analyze(test_id)).report.recommendation
            if not rec.winner:
                raise FailedPrecondition(
                    f"the analysis names no winner yet ({rec.reason}); "
                    "pass winner= to decide anyway"
                )
            winner = rec.winner
            reason = reason or rec.reason
        return await self.transition(test_id, TestStatus.CONCLUDED, action="conclude",
                                     reason=reason, winner=winner)


def _new_row(ok: ValidSpec, test_id: str, variants_json: list[dict[str, Any]],
             config: dict[str, Any], created_by: str, now_us: int) -> dict[str, Any]:
    """The experiments row of a new DRAFT test; its split history starts with "created"."""
    history = [{"at_us": now_us, "actor": created_by,
                "weights": {n: w for n, _, w in ok.ordered}, "explicit": False,
                "reason": "created"}]
    return dict(
        test_id=test_id, name=ok.name, description=ok.description,
        status=TestStatus.DRAFT.value, strategy=ok.strategy.value, model_name=ok.model_name,
        variants=store.dump(variants_json), config=store.dump(config),
        forced=store.dump({}), split_history=store.dump(history), created_by=created_by,
        winner="", conclusion="", created_us=now_us, updated_us=now_us, started_us=None,
        ended_us=None, running_us=0, resumed_us=None,
    )


async def _placed(conn: AsyncConnection, row: store.Row, now_us: int) -> str:
    """The config of a test about to run, with the range it holds in its layer (allocated
    on its first start; checked again on every start and resume)."""
    test = store.to_test(row, now_us)
    others = [store.to_test(r, now_us) for r in await store.live(conn)]
    start, end = test.layer_range or (0.0, test.layer_share)
    rng = place(holder(test, start, end), test.layer_share, test.layer_range is not None,
                [holder(t, *(t.layer_range or (0.0, 1.0))) for t in others
                 if t.test_id != test.test_id])
    config = json.loads(row.config)
    config["range"] = list(rng)
    return store.dump(config)


def holder(test: ABTest, start: float, end: float) -> Holder:
    return Holder(test.test_id, test.model_name, test.layer, start, end,
                  steers([x.model_ref for x in test.variants], test.model_name))


def _moved(row: store.Row, current: TestStatus, target: TestStatus, winner: str | None,
           reason: str, now_us: int) -> dict[str, Any]:
    """The columns a move from ``current`` to ``target`` sets (running time kept exact)."""
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
    return values
