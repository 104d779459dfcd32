"""Wire-level reads and edits of ModelInferRequest agree with a full protobuf decode."""

from __future__ import annotations

import random

import pytest

from neural.mlops.sidecar.wire import WireError, parameter_entry, read_model, rewrite_model
from neural.mlops.v1 import oip_pb2

Req = oip_pb2.ModelInferRequest


def _random_request(rng: random.Random) -> Req:
    req = Req(
        model_name=rng.choice(["", "m", "fraud_detector", "名前", "x" * 300]),
        model_version=rng.choice(["", "1", "v2.0.0", "y" * 200]),
        id=rng.choice(["", "req-1"]),
    )
    for i in range(rng.randint(0, 3)):
        t = req.inputs.add(name=f"in{i}", datatype="FP32", shape=[1, rng.randint(1, 4)])
        if rng.random() < 0.5:
            t.contents.fp32_contents.extend([rng.random() for _ in range(t.shape[1])])
        else:
            req.raw_input_contents.append(bytes(rng.getrandbits(8) for _ in range(4 * t.shape[1])))
        t.parameters["k"].string_param = "v"
    if rng.random() < 0.5:
        req.parameters["content_type"].string_param = "np"
    if rng.random() < 0.3:
        req.outputs.add(name="out")
    return req


def test_read_model_matches_protobuf_on_random_requests() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        req = _random_request(rng)
        assert read_model(req.SerializeToString()) == (req.model_name, req.model_version)


@pytest.mark.parametrize("name", [None, "other", "名前2"])
@pytest.mark.parametrize("version", [None, "", "7"])
def test_rewrite_changes_only_name_and_version(name: str | None, version: str | None) -> None:
    rng = random.Random(11)
    for _ in range(300):
        req = _random_request(rng)
        out = Req.FromString(rewrite_model(req.SerializeToString(), name, version))
        expected = Req()
        expected.CopyFrom(req)
        if name is not None:
            expected.model_name = name
        if version is not None:
            expected.model_version = version
        assert out == expected


def test_rewrite_handles_fields_written_out_of_order() -> None:
    # A non-canonical writer may put model_name after the tensors (and twice); last wins.
    body = Req(inputs=[Req.InferInputTensor(name="a")]).SerializeToString()
    odd = (
        body
        + Req(model_name="late").SerializeToString()
        + Req(model_version="3").SerializeToString()
    )
    assert read_model(odd) == ("late", "3")
    out = Req.FromString(rewrite_model(odd, "new", None))
    assert (out.model_name, out.model_version, out.inputs[0].name) == ("new", "3", "a")


def test_shadow_parameter_entry_merges_into_parameters() -> None:
    req = Req(model_name="m")
    req.parameters["content_type"].string_param = "np"
    raw = req.SerializeToString() + parameter_entry("neural_shadow", bool_value=True)
    out = Req.FromString(raw)
    assert out.parameters["neural_shadow"].bool_param is True
    assert out.parameters["content_type"].string_param == "np"
    out2 = Req.FromString(Req().SerializeToString() + parameter_entry("who", string_value="qa"))
    assert out2.parameters["who"].string_param == "qa"


@pytest.mark.parametrize("raw", [b"\x0a\x05ab", b"\x0a", b"\x80", b"\x0b\x00"])
def test_malformed_bytes_raise_wire_error(raw: bytes) -> None:
    with pytest.raises(WireError):
        read_model(raw)
