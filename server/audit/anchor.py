"""Copies of the signed checkpoints kept as files, and checkpoints pinned by an operator.

Every checkpoint is appended to ``<data_dir>/audit/checkpoints.jsonl`` and, with
``serve --audit-anchor PATH`` (``NEURAL_MLOPS_AUDIT_ANCHOR``), to an **anchor** the
operator keeps outside the store: PATH is a file, or a folder holding
:data:`ANCHOR_FILE_NAME`. Someone who can rewrite the store (database and data folder) but
not the anchor cannot make checkpoints disappear: verification reports every checkpoint
of the anchor that the store lacks, and the chain must still have the hash each one
signed. A **pin** (``audit verify --pin SEQ:HASH``) is the same statement given on the
command line, e.g. copied from an earlier ``audit checkpoint``.

Each file line is the canonical JSON of one :class:`Checkpoint`; files are created 0600.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from neural.mlops.server.audit.checkpoints import Checkpoint
from neural.mlops.server.audit.hashchain import canonical_json
from neural.mlops.server.errors import InvalidArgument, Unavailable

ANCHOR_FILE_NAME = "neural-mlops-audit-checkpoints.jsonl"
_HASH = re.compile(r"[0-9a-f]{64}")
_SEQ = re.compile(r"[1-9][0-9]{0,17}")  # 1 .. < 10^18, below SQLite's 2^63


class CheckpointFile:
    """An append-only JSONL file of checkpoints, named ``label`` in reports."""

    def __init__(self, path: Path, label: str) -> None:
        self.path = path
        self.label = label

    def append(self, cp: Checkpoint) -> None:
        line = (canonical_json(asdict(cp)) + "\n").encode()
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise Unavailable(f"cannot append the checkpoint at seq {cp.seq} to the "
                              f"{self.label}: {exc.strerror}") from None

    def read(self) -> tuple[list[Checkpoint], list[tuple[int, str]]]:
        """The checkpoints of the file and its unreadable lines as (0, problem)."""
        checkpoints: list[Checkpoint] = []
        problems: list[tuple[int, str]] = []
        try:
            fh = open(self.path, encoding="utf-8")  # noqa: SIM115 (closed below)
        except FileNotFoundError:
            return checkpoints, problems
        except OSError as exc:
            return checkpoints, [(0, f"the {self.label} cannot be read: {exc.strerror}")]
        with fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    checkpoints.append(Checkpoint(**json.loads(line)))
                except (ValueError, TypeError):
                    problems.append((0, f"{self.label} line {n} is not a checkpoint"))
        return checkpoints, problems


def anchor_file(path: str | os.PathLike[str]) -> CheckpointFile:
    """The anchor at ``path``: that file, or :data:`ANCHOR_FILE_NAME` in that folder."""
    target = Path(path).expanduser()
    if target.is_dir():
        target = target / ANCHOR_FILE_NAME
    elif not target.parent.is_dir():
        raise InvalidArgument(f"audit anchor {target}: {target.parent} is not a folder",
                              field="audit_anchor")
    return CheckpointFile(target, f"anchor {target}")


def parse_pins(texts: Sequence[str]) -> dict[int, str]:
    """``SEQ:HASH`` texts as {seq: hash}; two different hashes for one seq are refused."""
    pins: dict[int, str] = {}
    for text in texts:
        seq_text, _, hash_ = text.strip().partition(":")
        hash_ = hash_.lower()
        if not _SEQ.fullmatch(seq_text) or not _HASH.fullmatch(hash_):
            raise InvalidArgument(
                f"pin {text[:80]!r} is not SEQ:HASH (a seq >= 1 and a 64-digit hex hash)",
                field="pin",
            )
        seq = int(seq_text)
        if pins.get(seq, hash_) != hash_:
            raise InvalidArgument(f"two different pins for seq {seq}", field="pin")
        pins[seq] = hash_
    return pins


def remote_problem(
    stored: Sequence[Checkpoint], anchor: CheckpointFile | None, pins: dict[int, str]
) -> tuple[int, str]:
    """What a client of a remote control plane can check beside its verification: the
    first checkpoint of ``anchor`` missing from (or different in) the ``stored`` list, or
    the first pin no stored checkpoint confirms, as (seq, why); (0, "") when none. (A pin
    between checkpoints needs the store's events: verify the store folder.)"""
    by_signature = {cp.signature: cp for cp in stored}
    if anchor is not None:
        anchored, unreadable = anchor.read()
        if unreadable:
            return unreadable[0]
        for cp in anchored:
            if by_signature.get(cp.signature) != cp:
                return cp.seq, (f"signed checkpoint at seq {cp.seq} in the {anchor.label} is "
                                "missing from the store (checkpoints deleted)")
    signed = {cp.seq: cp.hash for cp in stored}
    for seq, hash_ in sorted(pins.items()):
        if signed.get(seq) != hash_:
            why = ("differs from the store's signed checkpoint there (chain rewritten)"
                   if seq in signed else "has no checkpoint of the store to compare with "
                   "remotely; verify the store folder (--target DIR) to check any seq")
            return seq, f"the pin at seq {seq} {why}"
    return 0, ""
