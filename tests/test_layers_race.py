"""Two replicas of the control plane on one store starting conflicting A/B tests at the same
moment: exactly one runs, the other is refused with FAILED_PRECONDITION naming the test
that won (server/experiments/layers.py), round after round.

Every start and resume places the test inside the write transaction that moves it
(``lifecycle.transition`` under ``Database.change``: SQLite's BEGIN IMMEDIATE, PostgreSQL's
``pg_advisory_xact_lock``), so the store never holds two live tests that the layer rules
forbid. Raced here: two starts in one layer (a share and an exact range), two steering
starts in two layers of one model, a resume against a start, a stop against a start, a
test start against a rollout start on its model (they do not constrain each other: both
run), two rollouts of one model, and two starts through two ``serve`` processes; on
PostgreSQL also on a database whose default isolation is REPEATABLE READ or SERIALIZABLE
(writes then failed with "could not serialize access" until ``Database.change`` asked
for READ COMMITTED).

Runs on SQLite and, in the PostgreSQL half of CI (``pytest -m storage``), on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy.engine import make_url
from support import databases
from support.databases import open_services
from support.processes import ServerProcess, start_server

from neural.mlops.ab_testing import ABTestManager
from neural.mlops.server.deployments.model import Deployment
from neural.mlops.server.deployments.planning import CreateSpec as DeploySpec
from neural.mlops.server.errors import FailedPrecondition, MLOpsError
from neural.mlops.server.experiments.model import ABTest, TestStatus
from neural.mlops.server.experiments.spec import CreateSpec
from neural.mlops.server.routing.model import ModelRoute
from neural.mlops.server.services import Services
from neural.mlops.v1 import routing_pb2, routing_pb2_grpc

pytestmark = pytest.mark.storage

ROUNDS = 30


@pytest.fixture
async def replicas(tmp_path: Path) -> AsyncIterator[tuple[Services, Services]]:
    """Two control planes, each with its own Database (engine, pool, locks) on one store."""
    first = await open_services(tmp_path / "store")
    second = await open_services(tmp_path / "store")
    try:
        yield first, second
    finally:
        await second.close()
        await first.close()


async def _create(s: Services, name: str, model: str, *, steer: bool = True,
                  **layer: Any) -> str:
    arms = (f"{model}:1", f"{model}:2") if steer else (model, model)
    spec = CreateSpec(name=name, control_variant=arms[0], treatment_variant=arms[1], **layer)
    return (await s.experiments.create_test(spec)).test_id


async def _at_once(*calls: Awaitable[Any]) -> list[Any]:
    """Run the calls together; each result is the value or the exception it raised."""
    return list(await asyncio.gather(*calls, return_exceptions=True))


def _one_wins(ids: Sequence[str], results: Sequence[Any], reason: str) -> tuple[str, str]:
    """Exactly one of the starts ran; the other was refused with ``reason`` naming it."""
    won = [i for i, r in zip(ids, results, strict=True) if isinstance(r, ABTest)]
    lost = [(i, r) for i, r in zip(ids, results, strict=True) if not isinstance(r, ABTest)]
    assert len(won) == 1 and len(lost) == 1, f"both or neither started: {results}"
    winner, (loser, err) = won[0], lost[0]
    assert isinstance(err, FailedPrecondition), repr(err)
    assert err.reason == reason and f"{winner!r}" in err.message, (err.reason, err.message)
    return winner, loser


async def _statuses(s: Services, *ids: str) -> list[TestStatus]:
    return [(await s.experiments.get_test(i)).status for i in ids]


def _experiments(routes: Sequence[ModelRoute], model: str) -> list[str]:
    return [r.route_id for r in routes if r.model_name == model and r.kind == "experiment"]


async def _tables_hold(replicas: Sequence[Services], expected: dict[str, list[str]]) -> None:
    """Each replica's routing table (compiled from the store) has exactly the expected
    test routes per model: the table never had to leave a conflicting test out."""
    for s in replicas:
        routes = (await s.routing.refresh()).routes
        assert {m: _experiments(routes, m) for m in expected} == expected


async def test_two_starts_in_one_layer_run_one_and_refuse_the_other_naming_it(
    replicas: tuple[Services, Services],
) -> None:
    a, b = replicas
    expected: dict[str, list[str]] = {}
    for r in range(ROUNDS):
        model = f"range{r}"
        # Even rounds: two shares of 0.6 (first fit); odd: two exact overlapping ranges.
        layers = ({"layer_share": 0.6}, {"layer_share": 0.6}) if r % 2 == 0 else (
            {"layer_range": (0.0, 0.5)}, {"layer_range": (0.4, 0.9)})
        ids = [await _create(a, "x", model, **layers[0]), await _create(b, "y", model,
                                                                         **layers[1])]
        first, second = (a, b) if r % 4 < 2 else (b, a)
        results = await _at_once(first.experiments.start_test(ids[0]),
                                 second.experiments.start_test(ids[1]))
        winner, loser = _one_wins(ids, results, "LAYER_RANGE_TAKEN")
        for s in (a, b):
            assert await _statuses(s, winner, loser) == [TestStatus.RUNNING, TestStatus.DRAFT]
        expected[model] = [winner]
    await _tables_hold(replicas, expected)


@pytest.mark.parametrize("level", ["repeatable read", "serializable"])
async def test_starts_queue_whatever_isolation_the_postgresql_database_defaults_to(
    tmp_path: Path, level: str,
) -> None:
    """A database whose ``default_transaction_isolation`` is not READ COMMITTED: a start
    that waited for the write lock still sees what the other committed meanwhile (its
    transaction is READ COMMITTED whatever the default), instead of failing on a stale
    snapshot ("could not serialize access")."""
    if not databases.on_postgres():
        pytest.skip("PostgreSQL only: runs in the PostgreSQL half (pytest -m storage)")
    data = tmp_path / "store"
    name = make_url(databases.database_url_for(data)).database
    databases.execute_sql(data, f"ALTER DATABASE \"{name}\" SET "
                                f"default_transaction_isolation = '{level}'")
    a, b = await open_services(data), await open_services(data)
    try:
        for r in range(ROUNDS // 3):
            model = f"iso{r}"
            ids = [await _create(a, "x", model), await _create(b, "y", model)]
            results = await _at_once(a.experiments.start_test(ids[0]),
                                     b.experiments.start_test(ids[1]))
            _one_wins(ids, results, "LAYER_RANGE_TAKEN")
    finally:
        await b.close()
        await a.close()


async def test_two_steering_starts_in_two_layers_of_one_model_run_one(
    replicas: tuple[Services, Services],
) -> None:
    a, b = replicas
    expected: dict[str, list[str]] = {}
    for r in range(ROUNDS):
        model = f"steer{r}"
        ids = [await _create(a, "x", model, layer=f"left{r}"),
               await _create(b, "y", model, layer=f"right{r}")]
        results = await _at_once(a.experiments.start_test(ids[0]),
                                 b.experiments.start_test(ids[1]))
        winner, loser = _one_wins(ids, results, "LAYER_STEERING_TAKEN")
        assert await _statuses(b, winner, loser) == [TestStatus.RUNNING, TestStatus.DRAFT]
        expected[model] = [winner]
    await _tables_hold(replicas, expected)


async def test_a_resume_racing_a_start_keeps_the_paused_tests_range(
    replicas: tuple[Services, Services],
) -> None:
    """A paused test holds its range, so whichever commits first the start is refused."""
    a, b = replicas
    expected: dict[str, list[str]] = {}
    for r in range(ROUNDS):
        model = f"resume{r}"
        paused = await _create(a, "paused", model)
        await a.experiments.start_test(paused)
        await a.experiments.pause_test(paused)
        newcomer = await _create(b, "new", model)
        calls = [a.experiments.resume_test(paused), b.experiments.start_test(newcomer)]
        results = await _at_once(*(calls if r % 2 == 0 else calls[::-1]))
        results = results if r % 2 == 0 else results[::-1]
        assert _one_wins([paused, newcomer], results, "LAYER_RANGE_TAKEN") == (paused, newcomer)
        assert await _statuses(b, paused, newcomer) == [TestStatus.RUNNING, TestStatus.DRAFT]
        expected[model] = [paused]
    await _tables_hold(replicas, expected)


async def test_a_stop_racing_a_start_frees_the_range_or_refuses_it_never_both(
    replicas: tuple[Services, Services],
) -> None:
    a, b = replicas
    expected: dict[str, list[str]] = {}
    for r in range(ROUNDS):
        model = f"stop{r}"
        old = await _create(a, "old", model)
        await a.experiments.start_test(old)
        new = await _create(b, "new", model)
        stopped, started = await _at_once(a.experiments.stop_test(old),
                                          b.experiments.start_test(new))
        assert isinstance(stopped, ABTest) and stopped.status == TestStatus.STOPPED
        if isinstance(started, ABTest):  # the stop committed first
            assert started.layer_range == (0.0, 1.0)
            expected[model] = [new]
        else:
            assert isinstance(started, FailedPrecondition), repr(started)
            assert started.reason == "LAYER_RANGE_TAKEN" and repr(old) in started.message
            assert await _statuses(a, new) == [TestStatus.DRAFT]
            expected[model] = []
    await _tables_hold(replicas, expected)


async def test_a_test_start_and_a_rollout_start_on_one_model_both_run(
    replicas: tuple[Services, Services],
) -> None:
    """Deployments and tests do not constrain each other (server/routing/compose.py: the
    rollout keeps its canary share, the test runs inside the stable share); two rollouts
    of one model do, and only one of two started at once is created."""
    a, b = replicas
    for r in range(ROUNDS):
        model = f"both{r}"
        test_id = await _create(a, "t", model)
        spec = DeploySpec(model_name=model, model_version="3", created_by="ops@x.com")
        started, deployed = await _at_once(
            a.experiments.start_test(test_id),
            b.deployments.create_deployment(spec, use_local_gate=False))
        assert isinstance(started, ABTest) and isinstance(deployed, Deployment), (started,
                                                                                  deployed)
        second = await _at_once(*(s.deployments.create_deployment(spec, use_local_gate=False)
                                  for s in (a, b)))
        assert all(isinstance(x, FailedPrecondition) and deployed.deployment_id in x.message
                   for x in second), second  # the first rollout is still active
        for s in (a, b):
            routes = [(x.kind, x.route_id) for x in (await s.routing.refresh()).routes
                      if x.model_name == model]
            assert routes == [("deployment", deployed.deployment_id), ("experiment", test_id)]


async def test_two_rollouts_of_one_model_started_at_once_create_one(
    replicas: tuple[Services, Services],
) -> None:
    a, b = replicas
    for r in range(ROUNDS):
        specs = [DeploySpec(model_name=f"roll{r}", model_version=v, created_by="ops@x.com")
                 for v in ("2", "3")]
        results = await _at_once(a.deployments.create_deployment(specs[0], use_local_gate=False),
                                 b.deployments.create_deployment(specs[1], use_local_gate=False))
        made = [x for x in results if isinstance(x, Deployment)]
        refused = [x for x in results if not isinstance(x, Deployment)]
        assert len(made) == 1 and len(refused) == 1, results
        assert isinstance(refused[0], FailedPrecondition), repr(refused[0])
        assert made[0].deployment_id in refused[0].message
        active = await b.deployments.list_deployments(f"roll{r}", active_only=True)
        assert [d.deployment_id for d in active] == [made[0].deployment_id]


# --- two OS processes: two `serve` replicas, one start each at the same moment ----------


@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    data = tmp_path / "store"
    first = start_server(data)
    try:
        second = start_server(data)
    except BaseException:
        first.stop()
        raise
    try:
        yield first, second
    finally:
        second.stop()
        first.stop()


def _start_together(managers: Sequence[ABTestManager], ids: Sequence[str]) -> list[Any]:
    """Each manager starts its test from its own thread, released by one barrier."""
    barrier = threading.Barrier(len(managers))

    def start(m: ABTestManager, test_id: str) -> Any:
        barrier.wait(timeout=30)
        try:
            return m.start_test(test_id)
        except MLOpsError as exc:
            return exc

    with ThreadPoolExecutor(len(managers)) as pool:
        return list(pool.map(start, managers, ids))


def _table(server: ServerProcess) -> list[routing_pb2.ModelRoute]:
    with grpc.insecure_channel(server.address) as channel:
        return list(routing_pb2_grpc.RoutingServiceStub(channel).GetRoutingTable(
            routing_pb2.GetRoutingTableRequest(), timeout=30).routes)


def test_two_serve_processes_starting_tests_of_one_layer_at_once_run_one(
    two_servers: tuple[ServerProcess, ServerProcess],
) -> None:
    managers = [ABTestManager(s.url) for s in two_servers]
    expected: dict[str, list[str]] = {}
    for r in range(ROUNDS):
        model = f"proc{r}"
        ids = [m.create_test(name, control_variant=f"{model}:1",
                             treatment_variant=f"{model}:2", layer_share=0.6).test_id
               for m, name in zip(managers, ("x", "y"), strict=True)]
        results = _start_together(managers, ids)
        won = [i for i, x in zip(ids, results, strict=True) if not isinstance(x, MLOpsError)]
        lost = [x for x in results if isinstance(x, MLOpsError)]
        assert len(won) == 1 and len(lost) == 1, f"both or neither started: {results}"
        assert isinstance(lost[0], FailedPrecondition), repr(lost[0])
        assert lost[0].reason == "LAYER_RANGE_TAKEN" and repr(won[0]) in lost[0].message
        for m in managers:
            assert [m.get_test(i).status.value for i in ids].count("running") == 1
        expected[model] = won
    for server in two_servers:
        routes = _table(server)
        assert {m: [x.route_id for x in routes if x.model_name == m] for m in expected} \
            == expected
