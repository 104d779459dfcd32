"""Request attributes for targeting: gRPC metadata + raw ModelInfer bytes, HTTP headers + JSON
body; parameters are read at the wire level and only when asked for."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from neural.mlops.sidecar.attributes import (
    RequestAttributes,
    infer_parameters,
    json_parameters,
)
from neural.mlops.v1 import oip_pb2, targeting


def _request(**params: object) -> oip_pb2.ModelInferRequest:
    r = oip_pb2.ModelInferRequest(model_name="churn", id="r1")
    for k, v in params.items():
        p = r.parameters[k]
        if isinstance(v, bool):
            p.bool_param = v
        elif isinstance(v, int):
            p.int64_param = v
        elif isinstance(v, float):
            p.double_param = v
        else:
            p.string_param = str(v)
    t = r.inputs.add(name="x", datatype="FP32", shape=[1, 4])
    t.contents.fp32_contents.extend([1.0, 2.0, 3.0, 4.0])
    t.parameters["inner"].string_param = "not-top-level"
    r.raw_input_contents.append(b"\xff" * 4096)
    return r


def test_grpc_parameters_of_every_kind_read_as_text() -> None:
    r = _request(tier="gold", n=-5, on=True, off=False, ratio=4.2, one=1.0)
    r.parameters["big"].uint64_param = 2**64 - 1
    got = infer_parameters(r.SerializeToString())
    assert got == {"tier": "gold", "n": "-5", "on": "true", "off": "false", "ratio": "4.2",
                   "one": "1.0", "big": str(2**64 - 1)}
    assert "inner" not in got  # a tensor's parameters are not the request's


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=8),
                       st.one_of(st.text(max_size=12), st.integers(-2**63, 2**63 - 1),
                                 st.booleans()), max_size=6))
def test_wire_reading_agrees_with_the_protobuf_parser(params: dict[str, object]) -> None:
    r = _request(**params)
    parsed = oip_pb2.ModelInferRequest.FromString(r.SerializeToString())
    expect = {}
    for k, p in parsed.parameters.items():
        which = p.WhichOneof("parameter_choice")
        v = getattr(p, which)
        expect[k] = ("true" if v else "false") if which == "bool_param" else str(v)
    assert infer_parameters(r.SerializeToString()) == expect


def test_grpc_attributes_headers_and_params_lazily() -> None:
    body = _request(tier="gold").SerializeToString()
    calls = []

    class Metadata(tuple[tuple[str, str | bytes], ...]):
        def __iter__(self):  # type: ignore[no-untyped-def]
            calls.append(1)
            return super().__iter__()

    md = Metadata((("x-country", "DE"), ("x-country", "FR"), ("trace-bin", b"\x00")))
    a = RequestAttributes.from_grpc(md, body)
    assert calls == []  # nothing read before a lookup
    assert a.get("x-country") == "DE"  # the first of a repeated header
    assert a.get("trace-bin") is None  # bytes never compare
    assert a.get("param.tier") == "gold"
    assert a.get("param.missing") is None and a.get("x-missing") is None


def test_malformed_request_bytes_read_as_no_parameters() -> None:
    good = _request(tier="gold").SerializeToString()
    a = RequestAttributes.from_grpc((), good[:-3] + b"\x22\x7f")
    assert a.get("param.tier") is None
    assert RequestAttributes.from_grpc(None, b"").get("x-a") is None


def test_http_attributes_from_headers_and_json_body() -> None:
    body = json.dumps({"inputs": [], "parameters": {"tier": "gold", "n": 3, "f": 1.5,
                                                    "b": True, "o": {"x": 1}, "z": None}})
    a = RequestAttributes.from_http({"X-Country": "DE", "Content-Type": "x"}, body.encode())
    assert a.get("x-country") == "DE"
    assert [a.get(f"param.{k}") for k in "tnfboz"] == [None, "3", "1.5", "true", None, None]
    assert a.get("param.tier") == "gold"
    parsed = RequestAttributes.from_http({}, {"parameters": {"tier": "gold"}})
    assert parsed.get("param.tier") == "gold"
    assert json_parameters(b"not json") == {} and json_parameters(b"[1]") == {}
    assert json_parameters({"parameters": [1]}) == {}


def test_a_matcher_reads_attributes_from_a_request() -> None:
    m = targeting.compile_texts(["x-country in [DE]", "param.tier = gold"])
    body = _request(tier="gold").SerializeToString()
    assert m.matches(RequestAttributes.from_grpc((("x-country", "DE"),), body).get)
    assert not m.matches(RequestAttributes.from_grpc((("x-country", "FR"),), body).get)
    other = _request(tier="free").SerializeToString()
    assert not m.matches(RequestAttributes.from_grpc((("x-country", "DE"),), other).get)
