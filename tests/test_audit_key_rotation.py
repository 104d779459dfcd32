"""Rotating the checkpoint key: earlier checkpoints keep verifying with the retired public
key, the old key endorses the new one, the rotation is audited, and tampering is still
caught on both sides of it."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.processes import start_server

from neural.mlops.audit import AuditLogger, EventInput, EventType
from neural.mlops.errors import InvalidArgument
from neural.mlops.server.audit.service import rotation_message
from neural.mlops.server.audit.signing import load_public_key, public_key_id, verify_signature


def _events(logger: AuditLogger, start: int, n: int) -> None:
    logger.log_events([
        EventInput(EventType.CUSTOM, "model", f"m:{i}", "touch", {"i": i}, user="ds@x.com")
        for i in range(start, start + n)
    ])


@pytest.fixture(params=["embedded", "remote"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Path, object]]:
    data = tmp_path / "store"
    if request.param == "embedded":
        yield str(data), data, None
    else:
        srv = start_server(data)
        try:
            yield srv.url, data, srv
        finally:
            srv.stop()


def test_rotation_keeps_old_checkpoints_verifiable_and_is_endorsed_and_audited(target) -> None:  # noqa: ANN001
    url, data, srv = target
    logger = AuditLogger(url)
    _events(logger, 1, 5)
    old_pem = logger.public_key()
    old_id = public_key_id(load_public_key(old_pem))

    rot = logger.rotate_key("yearly rotation", actor="security@x.com")

    assert rot.old_key_id == old_id and rot.new_key_id != old_id
    assert logger.public_key() == rot.public_key_pem
    assert public_key_id(load_public_key(rot.public_key_pem)) == rot.new_key_id
    # The old key vouches for the new one.
    assert verify_signature(
        load_public_key(old_pem),
        rotation_message(rot.old_key_id, rot.new_key_id, rot.public_key_pem),
        rot.endorsement,
    )
    (event,) = logger.query_events(event_type=EventType.CONFIGURATION_CHANGED)
    assert (event.actor, event.action, event.resource_type) == (
        "security@x.com",
        "rotate_key",
        "audit_key",
    )
    assert (
        event.details["new_key_id"] == rot.new_key_id
        and event.details["reason"] == "yearly rotation"
    )
    assert rot.checkpoint is not None and rot.checkpoint.key_id == rot.new_key_id
    assert rot.checkpoint.seq == event.seq

    _events(logger, 6, 5)
    logger.checkpoint()
    keys = [cp.key_id for cp in logger.list_checkpoints()]
    assert keys[0] == old_id and keys[-1] == rot.new_key_id
    assert logger.verify_chain().valid
    assert (data / "keys" / "retired" / f"{old_id}.pub").exists()
    if srv is not None:  # the retired key is read back from disk after a restart
        srv.stop()
        again = start_server(data)
        try:
            assert AuditLogger(again.url).verify_chain().valid
        finally:
            again.stop()


def test_a_checkpoint_whose_retired_key_is_gone_is_reported(tmp_path: Path) -> None:
    data = tmp_path / "store"
    logger = AuditLogger(data)
    _events(logger, 1, 3)
    rot = logger.rotate_key(actor="security@x.com")
    (data / "keys" / "retired" / f"{rot.old_key_id}.pub").unlink()
    result = AuditLogger(data).verify_chain()
    assert not result.valid
    assert f"signed by unknown key {rot.old_key_id}" in result.reason


def test_tampering_before_and_after_a_rotation_is_caught(tmp_path: Path) -> None:
    data = tmp_path / "store"
    logger = AuditLogger(data)
    _events(logger, 1, 4)
    logger.rotate_key(actor="security@x.com")
    _events(logger, 5, 3)
    db = sqlite3.connect(data / "mlops.db")
    with db:
        db.execute("UPDATE audit_events SET actor='nobody@x.com' WHERE seq=2")
    db.close()
    result = AuditLogger(data).verify_chain()
    assert not result.valid and result.first_bad_seq == 2


def test_rotation_refuses_a_broken_chain_and_bad_input(tmp_path: Path) -> None:
    data = tmp_path / "store"
    logger = AuditLogger(data)
    _events(logger, 1, 3)
    with pytest.raises(InvalidArgument) as err:
        logger.rotate_key(reason=7, actor="security@x.com")  # type: ignore[arg-type]
    assert err.value.field == "reason"
    before = logger.public_key()
    db = sqlite3.connect(data / "mlops.db")
    with db:
        db.execute("UPDATE audit_events SET details='{\"i\":99}' WHERE seq=2")
    db.close()
    with pytest.raises(Exception, match="refusing to sign"):
        AuditLogger(data).rotate_key(actor="security@x.com")
    assert AuditLogger(data).public_key() == before  # nothing changed


def test_cli_rotate_key(tmp_path: Path) -> None:
    data = tmp_path / "store"
    _events(AuditLogger(data), 1, 2)
    run = [sys.executable, "-m", "neural.mlops", "audit", "rotate-key", "--target", str(data)]
    missing = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "--actor" in missing.stderr
    ok = subprocess.run([*run, "--actor", "security@x.com", "--reason", "drill"],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "new_key_id" in ok.stdout and "BEGIN PUBLIC KEY" in ok.stdout
    # This process had the store open with the old key: it now verifies and signs with the new.
    logger = AuditLogger(data)
    assert logger.verify_chain().valid
    new_pem = ok.stdout[ok.stdout.index("-----BEGIN PUBLIC KEY") :]
    assert logger.public_key().strip() == new_pem.strip()
    _events(logger, 3, 1)
    assert logger.checkpoint().key_id == public_key_id(load_public_key(new_pem))
