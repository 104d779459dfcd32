"""Export files of the audit trail, and their offline verification.

Three formats, each streamed a page at a time (constant memory) and each carrying the
chain fields of every event plus a **seal**: the range exported (``first_seq``,
``last_seq``, ``count``, the ``prev_hash`` of the first event and the ``hash`` of the
last) signed with the store's Ed25519 checkpoint key. With the seal an auditor can check
an export alone, with no server (``neural-mlops audit verify FILE``): every event must
hash correctly and link to the one before, the first must link to the sealed
``first_prev_hash`` and the last must be the sealed ``last_hash``; so an edited, deleted,
inserted or reordered event, a truncated file, and a seal that was not signed by the key
all fail. Pin the store's public key (``--public-key keys/audit_ed25519.pub``) to rule
out a file re-signed with another key.

Layouts:

* ``jsonl``: first line ``{"record": "seal", ...seal}``, then one event object per line.
* ``json``: ``{"format": ..., "version": 1, "seal": {...}, "events": [`` on the first
  line, one event per line after it, ``]}`` on the last (still one JSON document).
* ``csv``: plain CSV (a header row, then one row per event, ``details`` as JSON text),
  so spreadsheets, ``csv.reader`` and ``pandas.read_csv`` read it as it is. Its seal is
  the file beside it, ``<file>.seal`` (:func:`seal_path`): one JSON object of the seal's
  fields. Keep the two together; the verifier needs both.

An export of a time range holds the contiguous run of the chain from the first event at
or after the start to the last event at or before the end, so the run verifies on its own.
"""

from __future__ import annotations

import csv
import io
import json
import os
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from neural.mlops.server.audit.hashchain import EVENT_FIELDS, canonical_json, signed_json
from neural.mlops.server.audit.signing import load_public_key, public_key_id, verify_signature
from neural.mlops.server.audit.verify import ChainChecker, ChainVerification
from neural.mlops.server.clock import from_us
from neural.mlops.server.errors import InvalidArgument

FORMAT_NAME = "neural-mlops-audit-export"
FORMAT_VERSION = 1
FORMATS = ("json", "jsonl", "csv")
SEAL_CONTEXT = b"neural-mlops-audit-export-v1\n"
SEAL_SUFFIX = ".seal"
# Exports written before the seal moved beside the file carry it on a first comment line;
# they are still read, so archived exports keep verifying.
LEGACY_CSV_SEAL_PREFIX = "# neural-mlops-audit-export seal="
CSV_COLUMNS = ("seq", "event_id", "time", *EVENT_FIELDS[2:])

_enc = json.encoder.encode_basestring


def parse_format(fmt: str) -> str:
    value = str(fmt).strip().lower()
    if value not in FORMATS:
        raise InvalidArgument(
            f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}", field="format"
        )
    return value


def seal_path(path: str | os.PathLike[str]) -> Path:
    """Where a CSV export's seal is: ``trail.csv`` -> ``trail.csv.seal``."""
    p = Path(path)
    return p.with_name(p.name + SEAL_SUFFIX)


def seal_file_bytes(seal: dict[str, Any]) -> bytes:
    """The content of a ``.seal`` file: the seal's fields as one JSON object, indented for
    people (the signature covers the fields, not their layout)."""
    return (json.dumps(seal, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def seal_message(seal: dict[str, Any]) -> bytes:
    """The bytes the seal's signature covers: every seal field but the signature and the
    (informational) embedded public key."""
    body = {k: v for k, v in seal.items() if k not in ("signature", "public_key", "record")}
    return SEAL_CONTEXT + signed_json(body).encode()


_SECOND_CACHE: dict[int, str] = {}


def _iso(ts_us: int) -> str:
    """``2024-01-15T12:00:00.000001Z``; the second's text is cached (events come in runs
    sharing a second), which makes export several times faster than isoformat()."""
    sec, us = divmod(ts_us, 1_000_000)
    prefix = _SECOND_CACHE.get(sec)
    if prefix is None:
        if len(_SECOND_CACHE) > 4096:
            _SECOND_CACHE.clear()
        prefix = _SECOND_CACHE[sec] = from_us(sec * 1_000_000).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{prefix}.{us:06d}Z"


def _json_event(r: Sequence[Any]) -> str:
    """One event as a JSON object; ``r`` is a stored row in EVENT_FIELDS order
    (details as canonical JSON text, inserted verbatim)."""
    e = _enc
    return (
        f'{{"seq":{r[0]},"event_id":{e(r[1])},"time":"{_iso(r[2])}","ts_us":{r[2]},'
        f'"event_type":{e(r[3])},"severity":{e(r[4])},"actor":{e(r[5])},'
        f'"resource_type":{e(r[6])},"resource_id":{e(r[7])},"action":{e(r[8])},'
        f'"details":{r[9]},"request_id":{e(r[10])},"peer":{e(r[11])},'
        f'"prev_hash":{e(r[12])},"hash":{e(r[13])},"hash_version":{int(r[14])}}}'
    )


class ExportRenderer:
    """Turns the seal and pages of stored rows into the bytes of one export file."""

    def __init__(self, fmt: str, seal: dict[str, Any]) -> None:
        self.fmt = parse_format(fmt)
        self.seal = seal
        self._first = True

    def header(self) -> bytes:
        if self.fmt == "jsonl":
            return (canonical_json({"record": "seal", **self.seal}) + "\n").encode()
        if self.fmt == "json":
            return (
                '{"format":"' + FORMAT_NAME + '","version":' + str(FORMAT_VERSION)
                + ',"seal":' + canonical_json(self.seal) + ',"events":[\n'
            ).encode()
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(CSV_COLUMNS)
        return buf.getvalue().encode()

    def rows(self, rows: Sequence[Sequence[Any]]) -> bytes:
        if not rows:
            return b""
        if self.fmt == "jsonl":
            return ("\n".join(map(_json_event, rows)) + "\n").encode()
        if self.fmt == "json":
            text = ",\n".join(map(_json_event, rows))
            if not self._first:
                text = ",\n" + text
            self._first = False
            return text.encode()
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(
            (r[0], r[1], _iso(r[2]), *r[2:]) for r in rows
        )
        return buf.getvalue().encode()

    def footer(self) -> bytes:
        if self.fmt == "json":
            return b"]}\n" if self._first else b"\n]}\n"
        return b""


class AtomicOutput:
    """A file that appears at ``path`` only when complete: bytes go to a hidden temporary
    file beside it, which :meth:`commit` fsyncs and renames; :meth:`abort` removes it.
    Opening checks the destination, so an unwritable path fails before any work."""

    def __init__(self, path: str | os.PathLike[str], *, field: str = "output_path") -> None:
        self.path = Path(path).expanduser()
        if str(path) == "" or self.path.is_dir():
            raise InvalidArgument(f"{str(path)!r} is a directory, not a file path", field=field)
        parent = self.path.parent
        if not parent.is_dir():
            why = "is not a folder" if parent.exists() else "does not exist"
            raise InvalidArgument(f"cannot write {self.path}: {parent} {why}", field=field)
        self.tmp = parent / f".{self.path.name}.{uuid.uuid4().hex[:8]}.partial"
        try:
            # 0600 like the key: an export or archive holds the whole audit record.
            fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            self.fh: BinaryIO = os.fdopen(fd, "wb")
        except OSError as exc:
            raise InvalidArgument(
                f"cannot write {self.path}: {exc.strerror}", field=field
            ) from None
        self.bytes_written = 0

    def write(self, data: bytes) -> None:
        self.fh.write(data)
        self.bytes_written += len(data)

    def commit(self) -> Path:
        try:
            self.fh.flush()
            os.fsync(self.fh.fileno())
            self.fh.close()
            os.replace(self.tmp, self.path)
        except OSError as exc:
            self.abort()
            raise InvalidArgument(
                f"cannot write {self.path}: {exc.strerror}", field="output_path"
            ) from None
        return self.path

    def abort(self) -> None:
        try:
            self.fh.close()
        finally:
            self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> AtomicOutput:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is not None:
            self.abort()


# --- offline verification -------------------------------------------------------------


def _sniff(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(64).lstrip()
    if head.startswith((CSV_COLUMNS[0] + ",").encode()) or head.startswith(b"#"):
        return "csv"
    if head.startswith(b'{"format"'):
        return "json"
    if head.startswith(b"{"):
        return "jsonl"
    raise InvalidArgument(f"{path} is not a neural-mlops audit export", field="path")


def _read_jsonl(path: Path) -> tuple[dict[str, Any] | None, Iterator[dict[str, Any]]]:
    fh = open(path, encoding="utf-8")  # noqa: SIM115 (closed when the iterator ends)
    first = fh.readline()
    seal = json.loads(first) if first.strip() else None
    if not isinstance(seal, dict) or seal.get("record") != "seal":
        fh.close()
        return None, iter(())

    def events() -> Iterator[dict[str, Any]]:
        with fh:
            for line in fh:
                if line.strip():
                    yield json.loads(line)

    return seal, events()


def _read_json(path: Path) -> tuple[dict[str, Any] | None, Iterator[dict[str, Any]]]:
    # Our own layout is one event per line, read in constant memory; a file someone
    # re-formatted is still accepted, but loaded whole.
    with open(path, encoding="utf-8") as fh:
        first = fh.readline().rstrip("\n")
    if first.endswith('"events":['):
        try:
            doc = json.loads(first + "]}")
        except ValueError:
            doc = None
        if isinstance(doc, dict):

            def events() -> Iterator[dict[str, Any]]:
                with open(path, encoding="utf-8") as fh:
                    fh.readline()
                    for line in fh:
                        line = line.strip()
                        if line in ("]}", ""):
                            continue
                        yield json.loads(line.rstrip(","))

            return doc.get("seal"), events()
    with open(path, encoding="utf-8") as fh:
        doc = json.load(fh)
    if not isinstance(doc, dict):
        return None, iter(())
    return doc.get("seal"), iter(doc.get("events") or [])


def _read_csv(path: Path) -> tuple[dict[str, Any] | None, Iterator[dict[str, Any]]]:
    fh = open(path, encoding="utf-8", newline="")  # noqa: SIM115
    first = fh.readline()
    if first.startswith(LEGACY_CSV_SEAL_PREFIX):
        seal = json.loads(first[len(LEGACY_CSV_SEAL_PREFIX):])
    else:
        fh.seek(0)
        seal = _read_seal_file(path)
        if seal is None:
            fh.close()
            return None, iter(())

    def events() -> Iterator[dict[str, Any]]:
        with fh:
            reader = csv.DictReader(fh)
            for rec in reader:
                out: dict[str, Any] = dict(rec)
                out["seq"] = int(rec["seq"])
                out["ts_us"] = int(rec["ts_us"])
                if rec.get("hash_version"):  # absent from exports made before 0012
                    out["hash_version"] = int(rec["hash_version"])
                yield out

    return seal, events()


def _read_seal_file(path: Path) -> Any:
    beside = seal_path(path)
    return json.loads(beside.read_text(encoding="utf-8")) if beside.is_file() else None


# Why a file has no seal, by format.
_NO_SEAL = {
    "csv": "no seal: a CSV export's seal is the file {seal} beside it (written with the "
    "export; keep the two together)",
    "json": "the file has no seal (not a neural-mlops audit export)",
    "jsonl": "the file has no seal (not a neural-mlops audit export, or its first line was "
    "removed)",
}

_READERS = {"jsonl": _read_jsonl, "json": _read_json, "csv": _read_csv}


def verify_export_file(
    path: str | os.PathLike[str], *, public_key_pem: str | bytes | None = None
) -> ChainVerification:
    """Verify an export file offline (no server, no database).

    ``public_key_pem`` pins the store's public key (``<data_dir>/keys/audit_ed25519.pub``
    or ``AuditLogger.public_key()``); without it the seal is checked against the key
    embedded in the file, which proves integrity but not origin.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise InvalidArgument(f"no such export file: {p}", field="path")
    try:
        fmt = _sniff(p)
        seal, events = _READERS[fmt](p)
    except (ValueError, KeyError) as exc:
        return ChainVerification(valid=False, reason=f"not a readable export ({exc})")
    if not isinstance(seal, dict):
        return ChainVerification(valid=False, reason=_NO_SEAL[fmt].format(seal=seal_path(p)))
    result = _check_sealed_run(seal, events)
    result.key_id, result.signature_valid, result.notes = _check_seal_signature(
        seal, public_key_pem)
    if result.valid and result.signature_valid and seal.get("store_chain_verified") is False:
        result.valid = False
        result.reason = ("the store's audit chain did not verify when this export was made "
                         "(run 'neural-mlops audit verify' on the store)")
    if result.valid and not result.signature_valid:
        result.valid = False
        result.reason = (
            "the seal's signature does not verify with "
            + ("the given public key" if public_key_pem is not None else "the embedded key")
            + " (the seal was altered or signed by another key)"
        )
    return result


def _check_sealed_run(seal: dict[str, Any], events: Iterable[dict[str, Any]]) -> ChainVerification:
    """The events of the file against each other and against the run the seal names."""
    try:
        first_seq = int(seal["first_seq"])
        last_seq = int(seal["last_seq"])
        count = int(seal["count"])
        checker = ChainChecker(base_seq=first_seq - 1, base_hash=str(seal["first_prev_hash"]))
    except (KeyError, TypeError, ValueError) as exc:
        return ChainVerification(valid=False, reason=f"malformed seal ({exc})")
    try:
        for event in events:
            if not checker.feed(event):
                break
    except (ValueError, KeyError, TypeError) as exc:
        checker.failure = ("", checker.expected_seq,
                           f"unreadable record after seq {checker.last_seq} ({exc})")
    result = checker.result()
    if not result.valid:
        return result
    bad_seq, why = 0, ""
    if count and (checker.checked != count or checker.last_seq != last_seq):
        bad_seq, why = checker.last_seq + 1, (
            f"the file ends at seq {checker.last_seq} ({checker.checked} events) but the "
            f"seal covers {first_seq}..{last_seq} ({count} events): events were removed")
    elif count and checker.prev_hash != seal.get("last_hash"):
        bad_seq, why = last_seq, "the last event's hash differs from the sealed last_hash"
    elif not count and checker.checked:
        why = "the seal covers no events but the file holds some (events inserted)"
    if why:
        result.valid, result.first_bad_seq, result.reason = False, bad_seq, why
    return result


def _check_seal_signature(
    seal: dict[str, Any], public_key_pem: str | bytes | None
) -> tuple[str, bool, list[str]]:
    """(key id, whether the seal's signature verifies, notes) with the given key, else
    the key embedded in the file."""
    notes: list[str] = []
    try:
        if public_key_pem is not None:
            pub = load_public_key(public_key_pem)
        else:
            pub = load_public_key(str(seal.get("public_key", "")))
            notes.append(
                "signature checked against the public key embedded in the file; pass the "
                "store's public key to prove the export came from it"
            )
        key_id = public_key_id(pub)
        sig_ok = key_id == seal.get("key_id") and verify_signature(
            pub, seal_message(seal), str(seal.get("signature", ""))
        )
    except Exception as exc:  # noqa: BLE001 (any unreadable key means: not verified)
        return "", False, [*notes, f"public key unusable: {exc}"]
    return key_id, sig_ok, notes


def iter_file_events(path: str | os.PathLike[str]) -> Iterable[dict[str, Any]]:
    """The events of an export file, in file order (for tooling and tests)."""
    p = Path(path)
    _seal, events = _READERS[_sniff(p)](p)
    return events
