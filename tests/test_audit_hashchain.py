"""The chain formula as documented, recomputed with nothing but json and hashlib."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from neural.mlops.audit import AuditLogger, EventType

HASHED = ("seq", "event_id", "ts_us", "event_type", "severity", "actor", "resource_type",
          "resource_id", "action", "details", "request_id", "peer", "prev_hash")


def test_an_auditor_recomputes_every_hash_from_the_documented_formula(tmp_path: Path) -> None:
    logger = AuditLogger(tmp_path / "store")
    logger.log_event(EventType.CUSTOM, user="Zoë <z@x.com>", resource_type="model",
                     resource_id='m:"v1"\\n', action="touch",
                     details={"b": [1, 2.5, None, True], "a": {"ü": "\u2028 \t tab", "z": -0.0}})
    logger.log_model_deployment("m", "v1", user="ops@x.com", environment="production")
    logger.export_audit_trail(tmp_path / "t.jsonl", format="jsonl")
    # Lines end with "\n" only (str.splitlines would also split at U+2028 inside a string).
    lines = (tmp_path / "t.jsonl").read_text(encoding="utf-8").rstrip("\n").split("\n")
    prev = "0" * 64
    for line in lines[1:]:
        event = json.loads(line)
        body = {k: event[k] for k in HASHED}
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert event["prev_hash"] == prev
        assert hashlib.sha256((event["prev_hash"] + text).encode("utf-8")).hexdigest() == event["hash"]
        prev = event["hash"]
    assert len(lines) == 3
    for fmt in ("json", "jsonl", "csv"):
        logger.export_audit_trail(tmp_path / f"all.{fmt}", format=fmt)
        assert logger.verify_export(tmp_path / f"all.{fmt}", logger.public_key()).valid
