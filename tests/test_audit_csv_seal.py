"""A CSV export is plain CSV, its seal the ``.seal`` file beside it: written by the store's
exporter and by the remote client alike, read by the offline verifier and the CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from neural.mlops.audit import AuditLogger, EventInput, EventType, verify_export
from neural.mlops.cli import main
from neural.mlops.server.audit.export import CSV_COLUMNS, seal_message

N = 5


def _log(logger: AuditLogger) -> None:
    logger.log_events([
        EventInput(EventType.CUSTOM, "model", f"m:{i}", "touch", {"i": i, "note": "a,b\n\"c\""})
        for i in range(1, N + 1)
    ])


@pytest.fixture(params=["embedded", "remote"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "embedded":
        return str(tmp_path / "store")
    return request.getfixturevalue("server").url


def test_csv_export_reads_as_header_then_rows_with_the_seal_beside_it(
    target: str, tmp_path: Path
) -> None:
    logger = AuditLogger(target)
    _log(logger)
    path = tmp_path / "trail.csv"
    result = logger.export_audit_trail(path, format="csv")

    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == list(CSV_COLUMNS)
    assert len(rows) == 1 + result.count and all(r[0].isdigit() for r in rows[1:])
    assert json.loads(rows[-1][CSV_COLUMNS.index("details")])["note"] == "a,b\n\"c\""

    seal_file = tmp_path / "trail.csv.seal"
    assert result.seal_path == str(seal_file)
    seal = json.loads(seal_file.read_text())
    assert seal == result.seal
    assert (seal["count"], seal["last_seq"]) == (result.count, result.last_seq)
    assert seal_message(seal)  # every field the signature covers is there
    check = verify_export(path, logger.public_key())
    assert check.valid and check.signature_valid and check.events_checked == result.count


def test_json_exports_keep_their_seal_inside(tmp_path: Path) -> None:
    logger = AuditLogger(tmp_path / "store")
    _log(logger)
    for fmt in ("json", "jsonl"):
        result = logger.export_audit_trail(tmp_path / f"t.{fmt}", format=fmt)
        assert result.seal_path == "" and not (tmp_path / f"t.{fmt}.seal").exists()


def test_a_csv_export_without_its_seal_file_does_not_verify_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logger = AuditLogger(tmp_path / "store")
    _log(logger)
    path = tmp_path / "trail.csv"
    logger.export_audit_trail(path, format="csv")
    (tmp_path / "trail.csv.seal").unlink()

    result = verify_export(path)
    assert not result.valid and "trail.csv.seal" in result.reason

    assert main(["audit", "verify", str(path)]) == 7
    out = capsys.readouterr().out
    assert "INVALID" in out and "trail.csv.seal beside it" in out


def test_cli_verifies_a_csv_export_with_its_seal_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "store")
    _log(AuditLogger(store))
    path = tmp_path / "trail.csv"
    assert main(["audit", "export", str(path), "--target", store, "--json"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert exported["seal_path"] == str(tmp_path / "trail.csv.seal")
    key = tmp_path / "store.pub"
    key.write_text(AuditLogger(store).public_key())

    assert main(["audit", "verify", str(path), "--public-key", str(key), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["valid"] is True

    # The seal belongs to this run: an edited seal no longer verifies.
    seal_file = tmp_path / "trail.csv.seal"
    seal = json.loads(seal_file.read_text())
    seal["count"] -= 1
    seal_file.write_text(json.dumps(seal))
    assert main(["audit", "verify", str(path), "--public-key", str(key)]) == 7
