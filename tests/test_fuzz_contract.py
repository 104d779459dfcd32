"""Contract fuzzing: inputs for every RPC of every service, generated from the descriptors,
against a real control plane with seeded state.

Each input is a message built field by field from the request type's descriptor (strings
with NUL, ``..``, 100k characters or names and ids that exist; numbers incl. NaN, ±inf,
negative and huge; timestamps out of range; unknown enum values; oversized repeated
fields), or random bytes sent as the whole body through a raw channel. What must hold:
* no call answers UNKNOWN, INTERNAL or UNAVAILABLE (the server's "this is a bug" codes);
* no call hangs (each has a deadline; DEADLINE_EXCEEDED is a failure);
* a refused call changes nothing: every change is chained in the audit log in the same
  transaction (Database.change), so no audit event may carry a refused call's request id.

``NEURAL_MLOPS_FUZZ_SEED`` and ``NEURAL_MLOPS_FUZZ_INPUTS`` replay or widen a run (the
default stays within about a minute; ``NEURAL_MLOPS_FUZZ_SECONDS`` caps it on a slow
machine); the count of inputs tried is printed.
"""

from __future__ import annotations

import importlib
import math
import os
import pkgutil
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import text_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from support.processes import ServerProcess, start_server

import neural.mlops.v1 as v1
from neural.mlops.ab_testing import ABTestManager
from neural.mlops.deployment import DeploymentManager
from neural.mlops.errors import MLOpsError
from neural.mlops.registry import ModelRegistry
from neural.mlops.v1 import audit_pb2
from neural.mlops.v1.limits import MAX_REPEATED, REPEATED_LIMITS

SEED = int(os.environ.get("NEURAL_MLOPS_FUZZ_SEED", "13"))
INPUTS = int(os.environ.get("NEURAL_MLOPS_FUZZ_INPUTS", "2400"))
# A loaded machine stops early rather than run past the suite's timeout (the count tried
# is printed; every RPC still gets its share, round robin).
BUDGET_SECONDS = float(os.environ.get("NEURAL_MLOPS_FUZZ_SECONDS", "120"))
DEADLINE = 15.0
BUG_CODES = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE,
             grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNIMPLEMENTED}

TEXTS = [
    "", " ", "\x00", "a\x00b", "..", "../../etc/passwd", "/", "*", "%", "_", "@", ":",
    "@champion", "fraud:v1", "x" * 129, "x" * 321, "x" * 5_000, "x" * 100_000,
    "é漢字🙂", "\u202e", "\t\n", "-1", "0", "NaN", "1e999", "{", "[]", "null", "{}",
    '{"a": NaN}', '{"a": 1e999}', '{"a": {"b": [1, 2, {"c": null}]}}', "true",
    "' OR 1=1 --", "a@x.com", " ME@X.COM\t", "s3://bucket/key", "file:///etc/passwd",
    "http://[::1", "127.0.0.1:1", "nmo_x_y", "control", "treatment", "production",
]
# Plausible values by field name suffix, so inputs reach past the first validation.
HINTS = {
    "name": ["fraud", "fuzz-test"], "version": ["v1", "v2", "@champion"],
    "alias": ["champion"], "by": ["b@x.com", "a@x.com"], "actor": ["b@x.com"],
    "approver": ["b@x.com"], "rejector": ["b@x.com"], "user": ["b@x.com"],
    "unit_id": ["u1", "u2"], "variant": ["control", "treatment"], "stage": ["production"],
    "_json": ["{}", '{"accuracy": 0.9}', "[1, 2]"], "upstream": ["127.0.0.1:9"],
    "model": ["fraud:v1", "fraud:v2"], "sidecar_id": ["sc-1"], "reason": ["because"],
}
INT32 = [0, 1, -1, 2, 5, 100, 1000, 2**31 - 1, -(2**31)]
INT64 = [*INT32, 2**53 + 1, 2**62, 2**63 - 1, -(2**63)]
UINT32 = [0, 1, 2, 100, 2**32 - 1]
UINT64 = [*UINT32, 2**63, 2**64 - 1]
FLOATS = [0.0, -0.0, 1.0, -1.0, 0.5, 0.95, 2.0, 50.0, 100.0, 101.0, 1e-320, 1e308, -1e308,
          math.nan, math.inf, -math.inf]
TIMESTAMP_SECONDS = [0, -1, 1_700_000_000, 4_102_444_800, -62_135_596_801, 253_402_300_800,
                     2**62, -(2**62)]
TIMESTAMP_NANOS = [0, 1, -1, 999_999_999, 2_000_000_000]


def _rpcs() -> list[MethodDescriptor]:
    """Every method of every service of the contract (the v1 package's _pb2 modules)."""
    methods = []
    for info in pkgutil.iter_modules(v1.__path__):
        if info.name.endswith("_pb2"):
            module = importlib.import_module(f"{v1.__name__}.{info.name}")
            for service in module.DESCRIPTOR.services_by_name.values():
                methods.extend(service.methods)
    return sorted(methods, key=lambda m: m.full_name)


@dataclass
class Generator:
    rng: random.Random
    known: list[str]  # names and ids that exist in the seeded store

    def text(self) -> str:
        roll = self.rng.random()
        if roll < 0.35 and self.known:
            return self.rng.choice(self.known)
        if roll < 0.85:
            return self.rng.choice(TEXTS)
        alphabet = "abcXYZ019-_.:@/ \x00\x7f漢🙂"
        return "".join(self.rng.choice(alphabet) for _ in range(self.rng.randint(1, 40)))

    def scalar(self, fd: FieldDescriptor) -> Any:
        t, pick = fd.type, self.rng.choice
        if t == FieldDescriptor.TYPE_STRING:
            hinted = [v for suffix, values in HINTS.items() if fd.name.endswith(suffix)
                      for v in values]
            if hinted and self.rng.random() < 0.5:
                return pick(hinted)  # plausible values reach past the first check
            return self.text()
        if t == FieldDescriptor.TYPE_BYTES:
            return self.rng.randbytes(pick([0, 1, 16, 300]))
        if t == FieldDescriptor.TYPE_BOOL:
            return pick([True, False])
        if t == FieldDescriptor.TYPE_ENUM:
            declared = [v.number for v in fd.enum_type.values]
            return pick(declared) if self.rng.random() < 0.8 else pick([99, -1, 2**31 - 1])
        if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
            return pick(FLOATS)
        if t in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64,
                 FieldDescriptor.TYPE_SFIXED64):
            return pick(INT64)
        if t in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
            return pick(UINT64)
        if t in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
            return pick(UINT32)
        return pick(INT32)

    def message(self, desc: Descriptor, depth: int = 0) -> Message:
        msg = GetMessageClass(desc)()
        if desc.full_name == "google.protobuf.Timestamp":
            msg.seconds = self.rng.choice(TIMESTAMP_SECONDS)  # type: ignore[attr-defined]
            msg.nanos = self.rng.choice(TIMESTAMP_NANOS)  # type: ignore[attr-defined]
            return msg
        chosen_oneofs = {o.name: self.rng.choice(o.fields) for o in desc.oneofs}
        for fd in desc.fields:
            oneof = fd.containing_oneof
            if oneof is not None and chosen_oneofs[oneof.name] is not fd:
                continue
            if self.rng.random() > (0.7 if depth == 0 else 0.4) or depth > 3:
                continue
            try:
                self._fill(msg, fd, depth)
            except (ValueError, TypeError, OverflowError):
                pass  # a value the field's type cannot hold (e.g. 1e308 as float32)
        return msg

    def _fill(self, msg: Message, fd: FieldDescriptor, depth: int) -> None:
        is_message = fd.type == FieldDescriptor.TYPE_MESSAGE
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            key_fd = fd.message_type.fields_by_name["key"]
            value_fd = fd.message_type.fields_by_name["value"]
            target = getattr(msg, fd.name)
            for _ in range(self.rng.randint(0, 3)):
                key = self.scalar(key_fd)
                if value_fd.type == FieldDescriptor.TYPE_MESSAGE:
                    target[key].CopyFrom(self.message(value_fd.message_type, depth + 1))
                else:
                    target[key] = self.scalar(value_fd)
            return
        if fd.is_repeated:
            target = getattr(msg, fd.name)
            limit = REPEATED_LIMITS.get(fd.full_name, MAX_REPEATED)
            oversized = limit == MAX_REPEATED and self.rng.random() < 0.05
            count = limit + 1 if oversized else self.rng.randint(0, 3)
            for i in range(count):
                if is_message:
                    item = target.add()
                    if i < 3:
                        item.CopyFrom(self.message(fd.message_type, depth + 1))
                else:
                    target.append(self.scalar(fd) if i < 3 else target[0] if target else "a")
            return
        if is_message:
            getattr(msg, fd.name).CopyFrom(self.message(fd.message_type, depth + 1))
        else:
            setattr(msg, fd.name, self.scalar(fd))


@dataclass
class Outcome:
    tried: int = 0
    refused: int = 0
    per_rpc: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    refused_ids: set[str] = field(default_factory=set)
    answered_ids: set[str] = field(default_factory=set)
    bugs: list[str] = field(default_factory=list)


def _call(channel: grpc.Channel, method: MethodDescriptor, bodies: list[bytes],
          request_id: str) -> None:
    """One call with raw bodies (identity serializers); raises grpc.RpcError."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    kw: dict[str, Any] = {"timeout": DEADLINE, "metadata": (("x-request-id", request_id),
                                                             ("x-neural-user", "fuzz@x.com"))}
    if method.client_streaming and method.server_streaming:
        for _ in channel.stream_stream(path)(iter(bodies), **kw):
            pass
    elif method.client_streaming:
        channel.stream_unary(path)(iter(bodies), **kw)
    elif method.server_streaming:
        stream = channel.unary_stream(path)(bodies[0], **kw)
        # A watch answers with the current state at once, then waits for the next change:
        # its first answer is the whole contract. Other streams are read to their end.
        wanted = 1 if method.name.startswith("Watch") else 10_000
        try:
            for _, _answer in zip(range(wanted), stream, strict=False):
                pass
        finally:
            stream.cancel()
    else:
        channel.unary_unary(path)(bodies[0], **kw)


def _describe(method: MethodDescriptor, messages: list[Message] | None, raw: bytes) -> str:
    if messages is None:
        return f"{method.name} raw body {raw[:64].hex()}"
    shown = " | ".join(text_format.MessageToString(m, as_one_line=True)[:300] for m in messages)
    return f"{method.name} {shown}"


def _inputs(gen: Generator, method: MethodDescriptor) -> tuple[list[Message] | None, list[bytes]]:
    if gen.rng.random() < 0.12:
        raw = gen.rng.randbytes(gen.rng.choice([1, 7, 64, 512]))
        return None, [raw]
    count = gen.rng.randint(1, 3) if method.client_streaming else 1
    messages = [gen.message(method.input_type) for _ in range(count)]
    return messages, [m.SerializeToString() for m in messages]


def _audit_request_ids(channel: grpc.Channel) -> tuple[set[str], list[str]]:
    """Every request id in the audit log, and every resource id (to aim inputs at)."""
    ids: set[str] = set()
    resources: list[str] = []
    query = channel.unary_stream("/neural.mlops.v1.AuditService/QueryEvents",
                                 request_serializer=audit_pb2.QueryEventsRequest.SerializeToString,
                                 response_deserializer=audit_pb2.QueryEventsChunk.FromString)
    token = ""
    while True:
        last = None
        for chunk in query(audit_pb2.QueryEventsRequest(page_size=10_000, page_token=token),
                           timeout=60):
            ids.update(e.request_id for e in chunk.events)
            resources.extend(e.resource_id for e in chunk.events)
            last = chunk
        token = last.next_page_token if last is not None else ""
        if not token:
            return ids, resources


def _seed(url: str, tmp: Path) -> None:
    """A small store the inputs can reach into: versions, an alias, a promotion request, a
    running A/B test, a shadow and a canary deployment."""
    artifact = tmp / "model.bin"
    artifact.write_bytes(b"weights" * 100)
    registry = ModelRegistry(url)
    registry.register_model(name="fraud", version="v1", model_path=str(artifact),
                            created_by="a@x.com")
    registry.register_model(name="fraud", version="v2", artifact_uri="s3://bucket/fraud/v2",
                            created_by="a@x.com")
    registry.set_alias("fraud", "champion", "v1", actor="a@x.com")
    registry.request_promotion("fraud", "v2", "staging", requested_by="a@x.com")
    tests = ABTestManager(url)
    test = tests.create_test("fuzz-test", control_variant="fraud:v1",
                             treatment_variant="fraud:v2", created_by="a@x.com")
    tests.start_test(test.test_id, actor="a@x.com")
    deployments = DeploymentManager(url)
    deployments.shadow_deploy("fraud:v1", "fraud:v2", created_by="a@x.com")
    try:
        deployments.create_deployment("fraud", "v2", "canary", created_by="a@x.com",
                                      override_reason="fuzz seed")
    except MLOpsError:
        pass  # an unconfigured upstream or gate: the store is seeded enough without it


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("fuzz")
    srv = start_server(tmp / "data")
    try:
        _seed(srv.url, tmp)
        yield srv
    finally:
        srv.stop()


def test_no_input_is_unknown_internal_or_a_hang_and_refusals_change_nothing(
    seeded: ServerProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    rpcs = _rpcs()
    out = Outcome()
    started = time.monotonic()
    options = [("grpc.max_send_message_length", 64 * 1024 * 1024)]
    with grpc.insecure_channel(seeded.address, options=options) as channel:
        _, resources = _audit_request_ids(channel)
        known = sorted({part for r in resources for part in (r, *r.split(":")) if part})
        gen = Generator(random.Random(SEED), ["fraud", "v1", "v2", "champion", *known])
        for i in range(INPUTS):
            if time.monotonic() - started > BUDGET_SECONDS:
                break
            method = rpcs[i % len(rpcs)]
            messages, bodies = _inputs(gen, method)
            request_id = f"fuzz-{SEED}-{i}"
            out.tried += 1
            out.per_rpc[method.name] = out.per_rpc.get(method.name, 0) + 1
            t0 = time.monotonic()
            try:
                _call(channel, method, bodies, request_id)
                out.answered_ids.add(request_id)
            except grpc.RpcError as err:
                code = err.code()
                if code in BUG_CODES:
                    out.bugs.append(f"{code.name} {err.details()!r} <- "
                                    f"{_describe(method, messages, bodies[0])}")
                elif code is not grpc.StatusCode.CANCELLED:
                    out.refused += 1
                    out.refused_ids.add(request_id)
            took = time.monotonic() - t0
            out.seconds[method.name] = out.seconds.get(method.name, 0.0) + took
            assert seeded.proc.poll() is None, f"the server died on input {i}"
        logged, _ = _audit_request_ids(channel)
    seconds = time.monotonic() - started
    with capsys.disabled():
        print(f"\nfuzz: {out.tried:,} inputs over {len(rpcs)} RPCs in {seconds:.0f} s (seed "
              f"{SEED}): {out.refused:,} refused, {len(out.answered_ids):,} answered, "
              f"{len(out.bugs)} bugs")
        slowest = sorted(out.seconds.items(), key=lambda kv: -kv[1])[:5]
        print("fuzz: slowest RPCs " + ", ".join(f"{k} {v:.1f} s" for k, v in slowest))
    assert not out.bugs, "\n".join(out.bugs[:25])
    changed = sorted(out.refused_ids & logged)
    assert not changed, f"refused calls that left audit events: {changed[:20]}"
    assert out.answered_ids & logged, "no answered call was audited: the check sees nothing"
    assert len(out.per_rpc) == len(rpcs) and min(out.per_rpc.values()) >= 5
