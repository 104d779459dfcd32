"""The demo's callers: inference calls through the sidecar from a pool of users, and
what they saw in the last second of the current phase, by model version."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from typing import Any

MODEL = "fraud_detector"
MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"


def infer_request() -> Any:
    """One ModelInfer request for the demo model: four float32 1.0 features."""
    from neural.mlops.v1 import oip_pb2

    req = oip_pb2.ModelInferRequest(model_name=MODEL)
    req.inputs.add(name="features", datatype="FP32", shape=[1, 4])
    req.raw_input_contents.append(b"\x00\x00\x80?" * 4)
    return req


class Traffic:
    """Inference calls through the sidecar from a pool of users, counted per version.

    A call's version is the ``model_version`` its answer carries (the sidecar sets it to
    the routed variant's version and the demo model echoes it); a failed call has no
    answer, so its variant's version in the current phase stands in, and a call the
    sidecar had no route for yet went to its ``--upstream``, version ``unrouted``.
    :meth:`begin_phase` starts a new count, so a phase never shows calls of the one
    before."""

    def __init__(self, address: str, rps: float, unrouted: str) -> None:
        import grpc

        from neural.mlops.v1 import oip_pb2

        self.channel = grpc.insecure_channel(address)
        self.call = self.channel.unary_unary(
            MODEL_INFER,
            request_serializer=oip_pb2.ModelInferRequest.SerializeToString,
            response_deserializer=oip_pb2.ModelInferResponse.FromString,
        )
        self.period = 1.0 / rps
        self.recent: deque[tuple[float, str, bool]] = deque()
        self._phase = 0
        self._versions: dict[str, str] = {}  # variant name -> version, this phase
        self.unrouted = unrouted
        self.total = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._n = 0

    def begin_phase(self, versions: dict[str, str]) -> None:
        """Count afresh from now; ``versions`` names each variant's version (for calls
        that fail before an answer says it)."""
        with self._lock:
            self._phase += 1
            self._versions = dict(versions)
            self.recent.clear()

    def _version_of(self, call: Any) -> str:
        variant = _variant(call)
        return self._versions.get(variant, variant) if variant else self.unrouted

    def _worker(self, index: int) -> None:
        import grpc

        req = infer_request()
        next_at = time.monotonic()
        while not self._stop.is_set():
            with self._lock:
                self._n += 1
                user = f"user{(self._n * 7919 + index) % 5000}"
                phase = self._phase
            ok = True
            try:
                answer, call = self.call.with_call(req, metadata=(("x-user-id", user),), timeout=5)
                version = answer.model_version or self._version_of(call)
            except grpc.RpcError as err:
                ok = False
                version = self._version_of(err)
            now = time.monotonic()
            with self._lock:
                self.total += 1
                if phase == self._phase:  # a call sent in the previous phase is not counted
                    self.recent.append((now, version, ok))
                while self.recent and self.recent[0][0] < now - 1.0:
                    self.recent.popleft()
            next_at += self.period * len(self._threads)
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def start(self, workers: int = 3) -> None:
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._worker, args=(i,), daemon=True) for i in range(workers)
        ]
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)
        self._threads = []

    def split(self) -> str:
        """What callers saw in the last second of this phase (see :func:`split_line`)."""
        with self._lock:
            items = [(version, ok) for _, version, ok in self.recent]
        return split_line(items)

    def close(self) -> None:
        self.stop()
        self.channel.close()


def split_line(calls: list[tuple[str, bool]]) -> str:
    """``callers saw v2  90% v3  10% | errors  2.5% | 160 req/s`` from one second of
    (version, succeeded) calls."""
    if not calls:
        return "no traffic yet"
    counts = Counter(version for version, _ in calls)
    errors = sum(1 for _, ok in calls if not ok)
    shares = " ".join(f"{k} {n / len(calls):4.0%}" for k, n in sorted(counts.items()))
    return f"callers saw {shares} | errors {errors / len(calls):4.1%} | {len(calls)} req/s"


def _variant(call: Any) -> str:
    """The sidecar's x-neural-variant: in the trailers by default, in the headers with
    --variant-header initial."""
    for part in ("trailing_metadata", "initial_metadata"):
        metadata = getattr(call, part, None)  # not on every RpcError
        found = dict(metadata() or ()).get("x-neural-variant") if metadata else None
        if found:
            return str(found)
    return ""
