"""What targeting costs per request in the sidecar: building a request's attributes and
evaluating a route's conditions, against a request whose route has none.

    python benchmarks/targeting.py            # ~20 s
    python benchmarks/targeting.py --smoke    # seconds; the tests run this

Each case builds ``RequestAttributes.from_grpc`` from realistic metadata and a ModelInfer
request carrying 64 KiB (or 4 MiB) of tensor data, as the proxy does for every call, then
evaluates the compiled matcher. Printed: the median ns per request over the rounds, its
spread (min-max of the rounds) and the ratio to the no-condition baseline. A parameter is
read at the wire level, so its cost does not grow with the tensors; the reference rows
decode the whole request with the protobuf parser instead (cheaper on small requests,
proportional to the payload on large ones).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neural.mlops.sidecar.attributes import RequestAttributes  # noqa: E402
from neural.mlops.v1 import oip_pb2, targeting  # noqa: E402

METADATA = (("x-user-id", "u-48151623"), ("x-request-id", "r-1"), ("x-country", "DE"),
            ("x-plan", "enterprise"), ("x-app-version", "4.3.1"), ("user-agent", "grpc-python"))


def _request(tensor_bytes: int) -> bytes:
    r = oip_pb2.ModelInferRequest(model_name="churn", id="r-1")
    r.parameters["tier"].string_param = "gold"
    r.inputs.add(name="x", datatype="FP32", shape=[1, tensor_bytes // 4])
    r.raw_input_contents.append(b"\x00" * tensor_bytes)
    return r.SerializeToString()


def cases(body: bytes, large: bytes) -> dict[str, Callable[[], object]]:
    one = targeting.compile_texts(["x-country in [DE, FR]"])
    three = targeting.compile_texts(["x-country in [DE, FR]", "x-plan = enterprise",
                                     "x-app-version >= 4.2"])
    param = targeting.compile_texts(["param.tier = gold"])

    def none() -> object:
        attrs = RequestAttributes.from_grpc(METADATA, body)
        return targeting.ALWAYS.always or targeting.ALWAYS.matches(attrs.get)

    def decoded(raw: bytes) -> Callable[[], object]:
        def run() -> object:
            return oip_pb2.ModelInferRequest.FromString(raw).parameters["tier"].string_param
        return run

    return {
        "no condition (baseline)": none,
        "1 header condition": lambda: one.matches(RequestAttributes.from_grpc(METADATA,
                                                                              body).get),
        "3 header conditions": lambda: three.matches(RequestAttributes.from_grpc(METADATA,
                                                                                 body).get),
        "1 param condition, 64 KiB request": lambda: param.matches(
            RequestAttributes.from_grpc(METADATA, body).get),
        "1 param condition, 4 MiB request": lambda: param.matches(
            RequestAttributes.from_grpc(METADATA, large).get),
        "protobuf decode, 64 KiB (reference)": decoded(body),
        "protobuf decode, 4 MiB (reference)": decoded(large),
    }


def measure(fn: Callable[[], object], number: int, rounds: int) -> list[float]:
    return [t / number * 1e9 for t in timeit.repeat(fn, number=number, repeat=rounds)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="a few iterations (tests)")
    args = p.parse_args(argv)
    number, rounds = (50, 3) if args.smoke else (2000, 15)
    found = cases(_request(64 * 1024), _request(4 * 1024 * 1024))
    results = {name: measure(fn, number, rounds) for name, fn in found.items()}
    base = statistics.median(results["no condition (baseline)"])
    print(f"{'case':<38} {'median ns':>10} {'spread ns':>17} {'ratio':>7}")
    for name, times in results.items():
        med = statistics.median(times)
        spread = f"{min(times):.0f}-{max(times):.0f}"
        print(f"{name:<38} {med:>10.0f} {spread:>17} {med / base:>6.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
