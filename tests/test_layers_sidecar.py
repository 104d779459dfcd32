"""Several A/B tests on one model at once, end to end (issue #16): a real control plane,
demo model and sidecar. Tests of one layer take disjoint units in their shares, a second
layer overlaps them independently, targeting decides who is eligible, each analysis
counts only its own units, and a start that does not fit is refused naming the holder."""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from pathlib import Path

import grpc
import pytest
from scipy import stats

sys.path.insert(0, str(Path(__file__).parent))

from peers.procs import start_demo, start_sidecar  # noqa: E402
from support.databases import execute_sql  # noqa: E402
from test_sidecar_routing import infer_stub, request  # noqa: E402

from neural.mlops.ab_testing import ABTestManager  # noqa: E402
from neural.mlops.errors import FailedPrecondition  # noqa: E402
from neural.mlops.v1.assignment import assign, layer_test  # noqa: E402
from neural.mlops.v1.units import unit_key  # noqa: E402

pytestmark = pytest.mark.storage  # runs on PostgreSQL too (support.databases)

MODEL = "layered"
N = 10_000
USERS = [f"user-{i}" for i in range(N)]


def _country(i: int) -> str:
    return "DE" if i % 2 == 0 else "US"


def _wait(predicate, timeout: float) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError


async def _send(address: str) -> list[str]:
    """One call per user (with its country); the model version each was served."""
    out = [""] * N
    async with grpc.aio.insecure_channel(address) as ch:
        stub = infer_stub(ch)
        req = request(model=MODEL)
        sem = asyncio.Semaphore(64)

        async def one(i: int) -> None:
            md = (("x-user-id", USERS[i]), ("x-country", _country(i)))
            async with sem:
                out[i] = (await stub(req, metadata=md, timeout=30)).model_version

        await asyncio.gather(*(one(i) for i in range(N)))
    return out


def _units(data_dir: Path, test_id: str) -> dict[int, str]:
    (rows,) = execute_sql(data_dir, (
        "SELECT unit_key, variant FROM experiment_units WHERE test_id = ?", (test_id,)))
    return {int(k): v for k, v in rows}


@pytest.fixture
def layered(server):  # noqa: ANN001, ANN201
    model = start_demo(MODEL)
    sidecar = start_sidecar(model.address, server.address, "--flush-interval", "0.2")
    try:
        _wait(lambda: sidecar.health()["routing"] == "live", 20)
        with ABTestManager(server.url) as m:
            yield m, sidecar
    finally:
        sidecar.stop()
        model.stop()


def test_tests_in_layers_split_units_as_specified_and_count_their_own(  # noqa: ANN001
    layered, server
) -> None:
    m, sidecar = layered
    a = m.create_test("a", control_variant=f"{MODEL}:1", treatment_variant=f"{MODEL}:2",
                      layer_share=0.3)
    b = m.create_test("b", control_variant=f"{MODEL}:1", treatment_variant=f"{MODEL}:3",
                      traffic_split=0.2, layer_share=0.5)
    # A label-only test in another layer (arms name the bare model), German users only.
    c = m.create_test("c", variants=[("control", MODEL, 0.5), ("blue", MODEL, 0.5)],
                      layer="ui", targeting=["x-country in [DE, AT]"])
    before = sidecar.health()["table_version"]
    for t in (a, b, c):
        m.start_test(t.test_id)
    a, b, c = (m.get_test(t.test_id) for t in (a, b, c))
    assert (a.layer_range, b.layer_range, c.layer_range) == ((0.0, 0.3), (0.3, 0.8), (0.0, 1.0))
    _wait(lambda: sidecar.health()["table_version"] > before, 10)
    time.sleep(0.5)  # every start has reached the table

    # A fourth test cannot fit in the default layer: the refusal names who holds it.
    d = m.create_test("d", control_variant=f"{MODEL}:1", treatment_variant=f"{MODEL}:4",
                      layer_share=0.5)
    with pytest.raises(FailedPrecondition) as refused:
        m.start_test(d.test_id)
    assert refused.value.reason == "LAYER_RANGE_TAKEN"
    assert a.test_id in refused.value.message and b.test_id in refused.value.message
    assert m.get_test(d.test_id).status.value == "draft"  # nothing changed

    served = asyncio.run(_send(sidecar.address))

    layer = [a.layer_range, b.layer_range]
    expect_a, expect_b, expect_c, served_expected = {}, {}, {}, []
    for i, u in enumerate(USERS):
        which = layer_test(a.layer, u, layer)
        version = ""
        for idx, (t, into) in enumerate(((a, expect_a), (b, expect_b))):
            if which == idx:
                arm = t.variants[assign(t.test_id, u, [x.weight for x in t.variants])]
                into[unit_key(u)] = arm.name
                version = arm.model_version
        served_expected.append(version)
        if _country(i) == "DE":
            expect_c[unit_key(u)] = c.variants[assign(c.test_id, u, [0.5, 0.5])].name
    assert served == served_expected  # each request got its steering test's arm

    # The sidecar flushes every 0.2 s; wait until every unit has reached the store.
    expected = ((a, expect_a), (b, expect_b), (c, expect_c))
    _wait(lambda: all(len(_units(server.data_dir, t.test_id)) >= len(e) for t, e in expected),
          60)
    got_a, got_b, got_c = (_units(server.data_dir, t.test_id) for t in (a, b, c))
    assert got_a == expect_a and got_b == expect_b and got_c == expect_c
    assert not set(got_a) & set(got_b)
    assert stats.binomtest(len(got_a), N, 0.3).pvalue > 1e-3
    assert stats.binomtest(len(got_b), N, 0.5).pvalue > 1e-3
    # The ui layer overlaps the default layer independently (German users).
    table = Counter((("a" if k in got_a else "b" if k in got_b else "-"), v)
                    for k, v in got_c.items())
    rows = [[table[g, v] for v in ("control", "blue")] for g in ("a", "b", "-")]
    assert stats.chi2_contingency(rows).pvalue > 1e-3
    # Each analysis counts its own eligible units and nothing else.
    for t, units in ((a, got_a), (b, got_b), (c, got_c)):
        report = m.analyze_test(t.test_id)
        per_arm = Counter(units.values())
        assert {x.name: report[x.name]["n"] for x in t.variants} == {
            x.name: per_arm[x.name] for x in t.variants}
