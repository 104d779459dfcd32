"""The audit API, embedded and remote alike: automatic events, explicit events, queries,
reports, exports and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from support.processes import ServerProcess, start_server

from neural.mlops.audit import (
    AuditLogger,
    ComplianceReport,
    EventSeverity,
    EventType,
    verify_export,
)
from neural.mlops.errors import InvalidArgument, NotFound
from neural.mlops.registry import ModelRegistry, ModelStage


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path_factory.mktemp("audit-server") / "data")
    yield srv
    srv.stop()


@pytest.fixture(params=["embedded", "remote"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store: a folder, or a fresh data dir behind the module's server (a distinct
    server per test would be slow; remote tests filter by their own resource ids)."""
    if request.param == "embedded":
        yield str(tmp_path / "store")
    else:
        yield request.getfixturevalue("shared_server").url


def _tag(tmp_path: Path) -> str:
    return tmp_path.name[-20:]


def test_registry_changes_are_audited_automatically(store: str, tmp_path: Path) -> None:
    name = f"m_{_tag(tmp_path)}".replace("-", "_")
    reg = ModelRegistry(store)
    reg.register_model(name=name, version="v1", artifact_uri="s3://bucket/m.pt",
                       framework="pytorch", created_by="ds@x.com", metrics={"acc": 0.9})
    reg.request_promotion(name=name, version="v1", target_stage=ModelStage.PRODUCTION,
                          requested_by="eng@x.com", reviewers=["boss@x.com"])
    reg.approve_promotion(name=name, version="v1", approver="boss@x.com", comment="ok")
    logger = AuditLogger(store)
    events = logger.query_events(resource_id=f"{name}:v1")
    types = [e.event_type for e in events]
    assert types[-2:] == [EventType.PROMOTION_REQUESTED, EventType.MODEL_REGISTERED]
    assert EventType.PROMOTION_APPROVED in types and EventType.MODEL_STAGE_CHANGED in types
    by_type = {e.event_type: e for e in events}
    assert by_type[EventType.MODEL_REGISTERED].actor == "ds@x.com"
    assert by_type[EventType.PROMOTION_APPROVED].actor == "boss@x.com"
    assert all(e.request_id for e in events)
    # Newest first, by time then chain position.
    assert [e.seq for e in events] == sorted((e.seq for e in events), reverse=True)
    report = logger.generate_compliance_report(datetime.now() - timedelta(hours=1),
                                               datetime.now() + timedelta(hours=1))
    mine = [a for a in report.approvals if a["resource_id"] == f"{name}:v1"]
    assert mine and mine[0]["decision"] == "granted" and mine[0]["requested_by"] == "eng@x.com"
    assert mine[0]["seconds_to_decision"] >= 0
    # Promoted through an approval: not an unapproved production change.
    assert all(c["resource_id"] != f"{name}:v1" for c in report.unapproved_production_changes)
    assert logger.verify_chain().valid


def test_filters_pagination_and_text(store: str, tmp_path: Path) -> None:
    tag = _tag(tmp_path)
    logger = AuditLogger(store)
    batch = logger.log_events([
        {"event_type": EventType.CUSTOM if i % 2 else "configuration_changed",
         "resource_type": "cfg", "resource_id": f"{tag}-{i}", "action": "set",
         "details": {"key": f"k{i}", "text": "Needle" if i == 7 else "hay"},
         "severity": EventSeverity.ERROR if i % 5 == 0 else "info",
         "user": f"{tag}-u{i % 3}"}
        for i in range(25)
    ])
    assert len(batch) == 25 and batch.last_seq - batch.first_seq == 24
    by_user = logger.query_events(user=f"{tag}-u1")
    assert [e.resource_id for e in by_user] == [
        f"{tag}-{i}" for i in range(24, -1, -1) if i % 3 == 1
    ]
    errors = logger.query_events(resource_type="cfg", severity="error", user=f"{tag}-u0")
    assert {e.resource_id for e in errors} == {f"{tag}-0", f"{tag}-15"}
    at_least_warning = logger.query_events(min_severity=EventSeverity.WARNING, user=f"{tag}-u0")
    assert {e.resource_id for e in at_least_warning} == {f"{tag}-0", f"{tag}-15"}
    hit = logger.query_events(text="needle", resource_type="cfg", user=f"{tag}-u1")
    assert [e.resource_id for e in hit] == [f"{tag}-7"]
    typed = logger.query_events(event_type=[EventType.CONFIGURATION_CHANGED], user=f"{tag}-u2")
    assert all(e.event_type == EventType.CONFIGURATION_CHANGED for e in typed) and len(typed) == 4
    # Paging walks every event exactly once, newest first.
    seen, token = [], ""
    while True:
        page = logger.query_events(resource_type="cfg", user=f"{tag}-u0", limit=3, page_token=token)
        seen += [e.seq for e in page]
        token = page.next_page_token
        if not token:
            break
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) == 9
    assert [e.seq for e in logger.iter_events(page_size=2, user=f"{tag}-u0")] == seen
    both = [EventType.CUSTOM, "configuration_changed"]
    assert [
        e.seq for e in logger.iter_events(page_size=2, user=f"{tag}-u0", event_type=both)
    ] == seen
    assert [e.seq for e in logger.iter_events(page_size=4, user=f"{tag}-u0", event_type=both,
                                              min_severity="error")] == [
        e.seq for e in logger.query_events(user=f"{tag}-u0", severity="error")]
    # A time window that ends before these events holds none of them.
    assert not logger.query_events(user=f"{tag}-u0", end_date=datetime.now() - timedelta(days=1))


def test_batch_is_all_or_nothing(store: str, tmp_path: Path) -> None:
    tag = _tag(tmp_path)
    logger = AuditLogger(store)
    with pytest.raises(InvalidArgument) as err:
        logger.log_events([{"event_type": "custom", "user": tag},
                           {"event_type": "no_such_event", "user": tag}])
    assert err.value.field == "event_type"
    assert not logger.query_events(user=tag)


def test_bad_input_is_refused_clearly_and_changes_nothing(store: str, tmp_path: Path) -> None:
    logger = AuditLogger(store)
    with pytest.raises(InvalidArgument, match="unknown event type") as err:
        logger.log_event("model_exploded", user="x")
    assert err.value.field == "event_type"
    with pytest.raises(InvalidArgument) as err:
        logger.query_events(event_type="nope")
    assert err.value.field == "event_type"
    with pytest.raises(InvalidArgument) as err:
        logger.log_event("custom", severity="fatal")
    assert err.value.field == "severity"
    with pytest.raises(InvalidArgument) as err:
        logger.log_event("custom", details={"x": object()})
    assert err.value.field == "details"
    now = datetime.now()
    with pytest.raises(InvalidArgument, match="before") as err:
        logger.query_events(start_date=now, end_date=now - timedelta(days=1))
    assert err.value.field == "end_date"
    with pytest.raises(InvalidArgument) as err:
        logger.generate_compliance_report(now, now - timedelta(days=1))
    assert err.value.field == "end_date"
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InvalidArgument, match="unknown export format") as err:
        logger.export_audit_trail(out / "x.xml", format="xml")
    assert err.value.field == "format"
    with pytest.raises(InvalidArgument) as err:
        logger.export_audit_trail(out / "x.json", start_date=now, end_date=now - timedelta(days=1))
    assert err.value.field == "end_date"
    with pytest.raises(InvalidArgument, match="does not exist") as err:
        logger.export_audit_trail(out / "missing" / "x.json")
    assert err.value.field == "output_path"
    locked = out / "locked"
    locked.mkdir(mode=0o500)
    if os.geteuid() != 0:  # root writes anywhere
        with pytest.raises(InvalidArgument, match="cannot write"):
            logger.export_audit_trail(locked / "x.json")
    with pytest.raises(InvalidArgument, match="cannot write") as err:
        logger.export_audit_trail("/proc/audit_trail.json")  # unwritable even for root
    assert err.value.field == "output_path"
    (out / "afile").write_text("x")
    with pytest.raises(InvalidArgument, match="not a folder"):
        logger.export_audit_trail(out / "afile" / "x.json")
    (out / "afile").unlink()
    with pytest.raises(NotFound):
        logger.get_report("report_missing")
    assert sorted(p.name for p in out.rglob("*")) == ["locked"]  # no partial file anywhere


def test_export_formats_and_report_rendering(store: str, tmp_path: Path) -> None:
    tag = _tag(tmp_path)
    logger = AuditLogger(store)
    logger.log_security_violation(user=f"{tag}@evil.com", resource_type="model", resource_id="m:1",
                                  action="unauthorized_access", ip_address="10.0.0.1")
    start = datetime.now() - timedelta(minutes=5)
    for fmt in ("json", "jsonl", "csv"):
        path = tmp_path / f"trail.{fmt}"
        result = logger.export_audit_trail(str(path), format=fmt, start_date=start)
        assert result.count >= 1 and result.path == str(path)
        check = verify_export(path, logger.public_key())
        assert check.valid and check.events_checked == result.count and check.signature_valid
    doc = json.loads((tmp_path / "trail.json").read_text())
    mine = [e for e in doc["events"] if e["actor"] == f"{tag}@evil.com"]
    assert (
        mine[0]["details"]["ip_address"] == "10.0.0.1"
        and mine[0]["event_type"] == "security_violation"
    )
    report = logger.generate_compliance_report(start, datetime.now() + timedelta(minutes=1))
    assert isinstance(report, ComplianceReport)
    assert any(v["actor"] == f"{tag}@evil.com" for v in report.security_violations)
    md, page = report.to_markdown(), report.to_html()
    assert (
        md.startswith(f"# Compliance report {report.report_id}") and "## Security violations" in md
    )
    assert (
        f"{tag}@evil.com" in md and f"{tag}@evil.com" in page and page.startswith("<!DOCTYPE html>")
    )
    saved = logger.get_report(report.report_id)
    assert saved.to_dict() == report.to_dict()
    assert report.report_id in [r["report_id"] for r in logger.list_reports()]


def test_cli_query_export_verify_report(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from neural.mlops.cli import main

    store = in_tmp / "store"
    AuditLogger(store).log_model_deployment("m", "v1", user="ops@x.com", environment="staging")

    def cli(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["audit", *args])
        out = capsys.readouterr()
        return code, out.out, out.err

    code, out, err = cli("query", "--target", str(store), "--type", "model_deployed", "--json")
    assert code == 0, err
    assert [e["actor"] for e in json.loads(out)["events"]] == ["ops@x.com"]
    code, out, err = cli("export", "trail.jsonl", "--target", str(store))
    assert code == 0, err
    assert (in_tmp / "trail.jsonl").is_file()
    code, out, _ = cli(
        "verify", "trail.jsonl", "--public-key", str(store / "keys" / "audit_ed25519.pub")
    )
    assert code == 0 and "VALID" in out
    lines = (in_tmp / "trail.jsonl").read_text().splitlines()
    (in_tmp / "trail.jsonl").write_text(
        "\n".join([lines[0], lines[1].replace("ops@", "dev@")]) + "\n"
    )
    code, out, _ = cli("verify", "trail.jsonl")
    assert code == 7 and "INVALID" in out and "edited" in out
    assert cli("verify", "--target", str(store))[0] == 0
    code, _, err = cli("report", "--target", str(store), "--format", "html", "--output", "r.html")
    assert code == 0, err
    assert "<h1>Compliance report" in (in_tmp / "r.html").read_text()
    code, _, err = cli("query", "--target", str(store), "--type", "bogus")
    assert code == 2 and "unknown event type" in err
    code, _, err = cli("export", "x.out", "--format", "xml", "--target", str(store))
    assert code == 2 and not (in_tmp / "x.out").exists()
    before = (datetime.now() + timedelta(days=1)).isoformat()
    code, out, err = cli("purge", "--before", before, "--target", str(store), "--json")
    assert code == 0, err
    assert json.loads(out)["purged_count"] >= 1
    assert cli("verify", "--target", str(store))[0] == 0
    # The real command line, once: the entry point runs.
    proc = subprocess.run([sys.executable, "-m", "neural.mlops", "audit", "verify", "trail.jsonl"],
                          capture_output=True, text=True, cwd=in_tmp, timeout=120)
    assert proc.returncode == 7 and "INVALID" in proc.stdout
