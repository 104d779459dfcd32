"""Layers through the Python API (embedded): ranges allocated at start and kept on pause,
refusals naming the holder, and units outside a test's range neither assigned nor counted
by the control plane (NOT_IN_TEST)."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural.mlops.ab_testing import ABTestManager
from neural.mlops.errors import FailedPrecondition, InvalidArgument
from neural.mlops.v1.assignment import layer_test


@pytest.fixture
def ab(tmp_path: Path) -> ABTestManager:
    return ABTestManager(str(tmp_path / "store"))


def _new(ab: ABTestManager, name: str, **kw) -> str:  # noqa: ANN003
    args = {"control_variant": "m:1", "treatment_variant": "m:2"} | kw
    return ab.create_test(name, **args).test_id


def test_ranges_are_allocated_first_fit_kept_on_pause_and_freed_on_stop(ab) -> None:  # noqa: ANN001
    a, b = _new(ab, "a", layer_share=0.4), _new(ab, "b", layer_share=0.4)
    assert ab.get_test(a).layer_range is None  # allocated when it starts
    assert ab.start_test(a).layer_range == (0.0, 0.4)
    assert ab.start_test(b).layer_range == (0.4, 0.8)
    ab.pause_test(a)
    c = _new(ab, "c", layer_share=0.3)
    with pytest.raises(FailedPrecondition) as err:  # a paused test keeps its range
        ab.start_test(c)
    assert err.value.reason == "LAYER_RANGE_TAKEN" and a in err.value.message
    assert ab.resume_test(a).layer_range == (0.0, 0.4)
    ab.stop_test(a)
    assert ab.start_test(c).layer_range == (0.0, 0.3)  # the first gap wide enough
    fixed = _new(ab, "fixed", layer_range=(0.7, 0.9))
    with pytest.raises(FailedPrecondition) as err:
        ab.start_test(fixed)
    assert err.value.reason == "LAYER_RANGE_TAKEN" and b in err.value.message


def test_one_layer_per_model_chooses_the_version(ab) -> None:  # noqa: ANN001
    ab.start_test(_new(ab, "steer", layer_share=0.5))
    label = ab.create_test("label", layer="ui",
                           variants=[("control", "m", 0.5), ("b", "m", 0.5)]).test_id
    assert ab.start_test(label).layer_range == (0.0, 1.0)  # bare model arms: a label
    other = _new(ab, "other", layer="ui2")
    with pytest.raises(FailedPrecondition) as err:
        ab.start_test(other)
    assert err.value.reason == "LAYER_STEERING_TAKEN" and err.value.field == "layer"


def test_bad_layer_arguments_are_refused_naming_the_part(ab) -> None:  # noqa: ANN001
    cases = [
        ({"layer_share": 1.5}, "layer_share"),
        ({"layer_share": 0.5, "layer_range": (0.0, 0.5)}, "layer_share"),
        ({"layer_range": (0.6, 0.2)}, "range"),
        ({"layer_range": (0.1, float("nan"))}, "range.end"),
        ({"layer": "a/b"}, "layer"),
        ({"targeting": ["x-plan == pro"]}, "targeting[0].op"),
        ({"targeting": ["x-plan = pro", "x-app-version >= 4.x"]}, "targeting[1].values[0]"),
        ({"targeting": "x-plan = pro"}, "targeting"),
    ]
    for kw, field in cases:
        with pytest.raises(InvalidArgument) as err:
            _new(ab, "bad", **kw)
        assert err.value.field == field, (kw, err.value.message)
    assert ab.list_tests() == []  # nothing was created


def test_units_outside_the_range_get_no_arm_and_are_not_counted(ab) -> None:  # noqa: ANN001
    tid = _new(ab, "part", layer_share=0.3)
    ab.start_test(tid)
    test = ab.get_test(tid)
    units = [f"u{i}" for i in range(200)]
    inside = [u for u in units if layer_test(test.layer, u, [(0.0, 0.3)]) == 0]
    outside = [u for u in units if u not in inside]
    assert inside and outside
    assert {ab.get_variant(tid, user_id=u) for u in inside} <= {"control", "treatment"}
    with pytest.raises(FailedPrecondition) as err:
        ab.get_variant(tid, user_id=outside[0])
    assert err.value.reason == "NOT_IN_TEST"
    with pytest.raises(FailedPrecondition):
        ab.record_request(tid, variant="control", user_id=outside[0], success=True)
    with pytest.raises(FailedPrecondition):
        ab.record_outcome(tid, user_id=outside[0], success=True)
    ab.force_variant(tid, outside[0], "treatment")  # a QA override puts the unit in
    assert ab.get_variant(tid, user_id=outside[0]) == "treatment"
    assert ab.record_requests(tid, [{"user_id": u, "success": True} for u in inside]) == len(
        inside)
    report = ab.analyze_test(tid)
    assert report["control"]["n"] + report["treatment"]["n"] == len(inside)
