"""The language-neutral specs beside the protos (AUDIT.md, METRICS.md, ASSIGNMENT.md) and
their vectors, checked against the product code: the vectors are what the code computes
today (regenerated here and compared), and the code accepts them.

Regenerate after a deliberate change: ``python tests/test_spec_vectors.py --write``.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from neural.mlops.server.audit import export as audit_export
from neural.mlops.server.audit.checkpoints import CHECKPOINT_CONTEXT, Checkpoint
from neural.mlops.server.audit.export import SEAL_CONTEXT, seal_message, verify_export_file
from neural.mlops.server.audit.hashchain import (
    EVENT_FIELDS,
    GENESIS,
    canonical_body,
    canonical_details,
    event_hash,
    stored_hash,
)
from neural.mlops.server.audit.signing import SigningKey, load_public_key, verify_signature
from neural.mlops.server.audit.verify import ChainChecker
from neural.mlops.v1 import assignment, traffic

SPEC = Path(traffic.__file__).parent
AUDIT_VECTORS = SPEC / "audit_vectors.json"
LATENCY_VECTORS = SPEC / "latency_vectors.json"
ASSIGNMENT_VECTORS = SPEC / "assignment_vectors.json"

# A key for the vectors only: its private half is derived from this public text, so
# anyone can regenerate the (deterministic) Ed25519 signatures.
VECTOR_KEY_SEED = hashlib.sha256(b"neural-mlops audit vectors").digest()
T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z in microseconds

_EVENTS: list[tuple[int, str, str, dict[str, Any]]] = [
    # (hash_version, actor, resource_id, details)
    (1, "legacy@example.com", "fraud:1", {"accuracy": 1.0, "threshold": 1e-07, "n": 3}),
    (1, "Zoë <z@example.com>", 'm:"quoted"\\', {"note": "tab\t newline\n \u2028 é",
                                                "nested": {"b": [1.5, None, True], "a": -0.0}}),
    (2, "ml_engineer@example.com", "fraud:2", {"accuracy": 1.0, "threshold": 1e-07,
                                               "big": 1e21, "small": 5e-324, "n": 3}),
    (2, "Zoë <z@example.com>", 'm:"quoted"\\', {"note": "tab\t newline\n \u2028 é \x7f \x1f",
                                                "\U0001f600": "astral key", "\uff61": "bmp key",
                                                "nested": {"b": [1.5, None, True], "a": -0.0}}),
    (2, "ops@example.com", "fraud", {}),
]


def _key() -> SigningKey:
    return SigningKey(Ed25519PrivateKey.from_private_bytes(VECTOR_KEY_SEED), Path("vectors"))


def _vector_events() -> list[dict[str, Any]]:
    prev, out = GENESIS, []
    for n, (version, actor, resource_id, details) in enumerate(_EVENTS, start=1):
        ev: dict[str, Any] = {
            "seq": n, "event_id": hashlib.sha256(f"event {n}".encode()).hexdigest()[:32],
            "ts_us": T0 + n * 1_000_001, "event_type": "custom", "severity": "info",
            "actor": actor, "resource_type": "model", "resource_id": resource_id,
            "action": "touch", "details": details, "request_id": f"req-{n}",
            "peer": "ipv4:127.0.0.1:5000" if n % 2 else "embedded", "prev_hash": prev,
            "hash_version": version,
        }
        ev["hash"] = prev = event_hash(ev)
        out.append(ev)
    return out


def _hashed_text(ev: dict[str, Any]) -> str:
    # The product's fast path; the tests hold its SHA-256 equal to event_hash().
    text = canonical_details(ev["details"], ev["hash_version"])
    return ev["prev_hash"] + canonical_body(ev, text, ev["hash_version"])


def audit_vectors() -> dict[str, Any]:
    key = _key()
    events = _vector_events()
    cp = Checkpoint(seq=events[-1]["seq"], hash=events[-1]["hash"], created_us=T0 + 9_000_000,
                    kind="periodic", key_id=key.key_id, signature="")
    cp.signature = key.sign(cp.message())
    seal: dict[str, Any] = {
        "format": audit_export.FORMAT_NAME, "version": audit_export.FORMAT_VERSION,
        "exported_at_us": T0 + 10_000_000, "exported_by": "auditor@example.com",
        "start_us": None, "end_us": None, "first_seq": 1, "last_seq": len(events),
        "count": len(events), "first_prev_hash": GENESIS, "last_hash": events[-1]["hash"],
        "store_chain_verified": True, "key_id": key.key_id,
    }
    seal["signature"] = key.sign(seal_message(seal))
    seal["public_key"] = key.public_pem
    rows = [tuple(canonical_details(e["details"], e["hash_version"]) if f == "details" else e[f]
                  for f in EVENT_FIELDS) for e in events]
    renderer = audit_export.ExportRenderer("jsonl", seal)
    export_jsonl = (renderer.header() + renderer.rows(rows) + renderer.footer()).decode()
    return {
        "description": "Test vectors for the audit hash chain, checkpoint signatures and "
        "export seals (AUDIT.md). Events 1-2 are hash_version 1, 3-5 hash_version 2. "
        "hashed_text is the exact UTF-8 text whose SHA-256 is the hash; message is the exact "
        "UTF-8 text an Ed25519 signature covers. The key is for vectors only: its private "
        "key is sha256('neural-mlops audit vectors') as the 32-byte Ed25519 seed.",
        "public_key": key.public_pem,
        "key_id": key.key_id,
        "events": [{**e, "hashed_text": _hashed_text(e)} for e in events],
        "checkpoint": {**{k: getattr(cp, k) for k in ("seq", "hash", "created_us", "kind",
                                                      "key_id", "signature")},
                       "message": cp.message().decode()},
        "seal": {**seal, "message": seal_message(seal).decode()},
        "export_jsonl": export_jsonl,
    }


def _neighbours(x: float) -> tuple[float, float]:
    return math.nextafter(x, -math.inf), math.nextafter(x, math.inf)


def latency_vectors() -> dict[str, Any]:
    bounds = list(traffic.LATENCY_BOUNDS)
    values: list[float] = [0.0, 5e-324, 1e-7, 0.0001, 0.001, 0.01, 0.03, 0.1, 0.25, 1.0,
                           1.5, 10.0, 9999.999, 1e4, 1e5, 1.7976931348623157e308]
    for b in bounds:
        values += [b, *_neighbours(b)]
    cases = [{"seconds": v, "bucket": traffic.latency_bucket(v)}
             for v in sorted(set(values))]
    return {
        "description": "Latency histogram buckets of scheme log10x40:1e-6..1e4 (METRICS.md). "
        "bounds are the normative upper bounds in seconds (binary64, shortest round-trip "
        "decimal); bucket(v) = the number of bounds <= v. cases hold every bound, the double "
        "just below and just above each, and a few ordinary values.",
        "scheme": traffic.HISTOGRAM_SCHEME,
        "buckets": len(bounds) + 1,
        "bounds": bounds,
        "cases": cases,
    }


def rounding_vectors() -> list[dict[str, Any]]:
    """uint64 values where converting to binary64 must round correctly (ASSIGNMENT.md)."""
    half = 0.5 + 2.0**-53  # the double after 0.5
    out = []
    for offset, why in (
        (1024, "exact tie between 2^63 and 2^63+2048: ties to even, bucket 0.5"),
        (1025, "just above the tie: rounds up to 2^63+2048, bucket 0.5 + 2^-53; "
               "(double)(u >>> 1) * 2 gives 0.5 (the lost low bit made it a tie)"),
        (3072, "tie between 2^63+2048 and 2^63+4096: ties to even, bucket 0.5 + 2^-52"),
    ):
        u = 2**63 + offset
        b = u / 2**64
        weights = [half, 1.0 - half]
        out.append({"uint64": str(u), "bucket": b, "weights": weights,
                    "variant": assignment.pick(b, weights), "note": why})
    return out


def _dump(doc: Any) -> str:
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def write() -> None:
    AUDIT_VECTORS.write_text(_dump(audit_vectors()), encoding="utf-8")
    LATENCY_VECTORS.write_text(_dump(latency_vectors()), encoding="utf-8")
    doc = json.loads(ASSIGNMENT_VECTORS.read_text(encoding="utf-8"))
    doc["rounding_vectors"] = rounding_vectors()
    text = json.dumps(doc, indent=0, ensure_ascii=False)
    ASSIGNMENT_VECTORS.write_text(text + "\n", encoding="utf-8")


# --- the tests ------------------------------------------------------------------------


def test_audit_vectors_are_what_the_code_computes() -> None:
    assert json.loads(AUDIT_VECTORS.read_text(encoding="utf-8")) == json.loads(
        _dump(audit_vectors()))


def test_audit_vector_hashes_follow_the_spec_formula() -> None:
    doc = json.loads(AUDIT_VECTORS.read_text(encoding="utf-8"))
    checker = ChainChecker()
    for ev in doc["events"]:
        assert hashlib.sha256(ev["hashed_text"].encode()).hexdigest() == ev["hash"]
        body = {k: ev[k] for k in EVENT_FIELDS if k not in ("hash", "hash_version")}
        if ev["hash_version"] == 2:
            expected = ev["prev_hash"] + rfc8785.dumps({**body, "hash_version": 2}).decode()
        else:
            expected = ev["prev_hash"] + json.dumps(body, sort_keys=True, separators=(",", ":"),
                                                    ensure_ascii=False)
        assert ev["hashed_text"] == expected
        text = canonical_details(ev["details"], ev["hash_version"])
        assert stored_hash(ev, text) == ev["hash"]
        assert checker.feed(ev), checker.failure
    assert [e["hash_version"] for e in doc["events"]] == [1, 1, 2, 2, 2]
    # Where the versions differ: Python's float text against ECMAScript's.
    assert '"accuracy":1.0' in doc["events"][0]["hashed_text"]
    assert '"accuracy":1,' in doc["events"][2]["hashed_text"]
    assert '"threshold":1e-7' in doc["events"][2]["hashed_text"]


def test_checkpoint_and_seal_vectors_verify_with_the_vector_key(tmp_path: Path) -> None:
    doc = json.loads(AUDIT_VECTORS.read_text(encoding="utf-8"))
    pub = load_public_key(doc["public_key"])
    cp = doc["checkpoint"]
    body = {k: cp[k] for k in ("seq", "hash", "created_us", "kind", "key_id")}
    message = CHECKPOINT_CONTEXT + rfc8785.dumps(body)
    assert cp["message"].encode() == message
    assert verify_signature(pub, message, cp["signature"])
    seal = doc["seal"]
    body = {k: v for k, v in seal.items()
            if k not in ("signature", "public_key", "message")}
    message = SEAL_CONTEXT + rfc8785.dumps(body)
    assert seal["message"].encode() == message
    assert verify_signature(pub, message, seal["signature"])
    export = tmp_path / "vectors.jsonl"
    export.write_text(doc["export_jsonl"], encoding="utf-8")
    result = verify_export_file(export, public_key_pem=doc["public_key"])
    assert result.valid and result.events_checked == 5 and result.signature_valid


def test_latency_vectors_are_what_the_code_computes() -> None:
    doc = json.loads(LATENCY_VECTORS.read_text(encoding="utf-8"))
    assert doc == json.loads(_dump(latency_vectors()))
    assert doc["scheme"] == traffic.HISTOGRAM_SCHEME
    assert tuple(doc["bounds"]) == traffic.LATENCY_BOUNDS and len(doc["bounds"]) == 401
    for case in doc["cases"]:
        assert traffic.latency_bucket(case["seconds"]) == case["bucket"]
        assert case["bucket"] == sum(b <= case["seconds"] for b in doc["bounds"])
        h = traffic.LatencyHistogram()
        h.add(case["seconds"])
        assert h.dense() == [0] * case["bucket"] + [1]


def test_assignment_rounding_vectors_at_the_float_tie() -> None:
    doc = json.loads(ASSIGNMENT_VECTORS.read_text(encoding="utf-8"))
    assert doc["rounding_vectors"] == json.loads(json.dumps(rounding_vectors()))
    by_u = {int(v["uint64"]): v for v in doc["rounding_vectors"]}
    tie = by_u[2**63 + 1025]
    assert tie["bucket"] == 0.5 + 2.0**-53 == float(2**63 + 1025) * 2.0**-64
    assert tie["variant"] == 1
    # The shortcut ASSIGNMENT.md warns about: halving first loses the low bit.
    assert float((2**63 + 1025) >> 1) * 2.0 * 2.0**-64 == 0.5
    assert assignment.pick(0.5, tie["weights"]) == 0
    assert by_u[2**63 + 1024]["bucket"] == 0.5
    assert by_u[2**63 + 3072]["bucket"] == 0.5 + 2.0**-52
    for v in doc["rounding_vectors"]:
        assert assignment.pick(v["bucket"], v["weights"]) == v["variant"]


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write()
    else:
        print(__doc__)


def test_a_seal_beyond_2_53_is_signed_as_text_and_old_such_seals_still_verify(
    tmp_path: Path,
) -> None:
    from datetime import datetime

    from neural.mlops.audit import AuditLogger, EventType

    logger = AuditLogger(tmp_path / "store")
    logger.log_event(EventType.CUSTOM, resource_type="model", resource_id="m", action="a")
    path = tmp_path / "t.jsonl"
    logger.export_audit_trail(path, format="jsonl", end_date=datetime(9999, 12, 31))
    seal = json.loads(path.read_text(encoding="utf-8").split("\n")[0])
    assert isinstance(seal["end_us"], str) and int(seal["end_us"]) > 2**53
    assert logger.verify_export(path, logger.public_key()).valid
    # A seal signed before RFC 8785 with such a bound: json.dumps text, still accepted.
    key = _key()
    old = {**seal, "end_us": int(seal["end_us"]), "key_id": key.key_id}
    body = {k: v for k, v in old.items() if k not in ("signature", "public_key", "record")}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    old["signature"] = key.sign(SEAL_CONTEXT + text.encode())
    assert seal_message(old) == SEAL_CONTEXT + text.encode()
    assert verify_signature(key.public, seal_message(old), old["signature"])
