"""``neural-mlops audit ...``: query, report, export, verify and purge the audit trail.

Dates are ISO (``2024-03-31`` or ``2024-03-31T12:00:00``, naive = local time). A date
without a time in ``--end``/``--until`` means the end of that day.

``neural-mlops audit verify FILE`` checks an export with no server and no store: every
event's hash, the links between events and the signed seal (a CSV export's seal is the
file ``FILE.seal`` beside it, which ``audit export`` writes with it). Add ``--public-key``
with the store's ``keys/audit_ed25519.pub`` (or ``audit public-key`` output) to prove the
file came from that store. Exit code 0 = valid, 7 = tampered or damaged.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from neural.mlops.cli._output import add_common, emit, print_json, print_record, print_table
from neural.mlops.server.errors import InvalidArgument

EXIT_INVALID_CHAIN = 7


def _date(value: str | None, field: str, *, end_of_day: bool = False) -> datetime | None:
    if value is None:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidArgument(
            f"{field} is not an ISO date or datetime: {value!r}", field=field
        ) from None
    if end_of_day and len(value.strip()) == 10:
        dt = dt + timedelta(days=1) - timedelta(microseconds=1)
    return dt


def _logger(args: argparse.Namespace) -> Any:
    from neural.mlops.audit import AuditLogger

    return AuditLogger(args.target)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("audit", help="the tamper-evident audit trail",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cmds = p.add_subparsers(dest="audit_command", metavar="ACTION", required=True)

    q = cmds.add_parser("query", help="events matching filters, newest first")
    add_common(q)
    q.add_argument("--type", dest="types", action="append", help="event type (repeatable)")
    q.add_argument("--severity", action="append", help="exact severity (repeatable)")
    q.add_argument("--min-severity", help="this severity and above")
    q.add_argument("--user", help="actor")
    q.add_argument("--resource-type", help="e.g. model, deployment, ab_test, shadow")
    q.add_argument("--resource-id", help="e.g. fraud:v2 (a model version's NAME:VERSION)")
    q.add_argument("--since", "--start", dest="start", help="from this date/time")
    q.add_argument("--until", "--end", dest="end", help="up to this date/time")
    q.add_argument("--text", help="substring of the details (case-insensitive)")
    q.add_argument("--limit", type=int, default=50, help="events per page (default %(default)s)")
    q.add_argument("--page-token", default="")
    q.add_argument("--all", action="store_true", help="every matching event (all pages)")
    q.set_defaults(handler=_query)

    r = cmds.add_parser("report", help="generate (or show) a compliance report")
    add_common(r)
    r.add_argument("--start", help="period start (default: 90 days ago)")
    r.add_argument("--end", help="period end (default: now)")
    r.add_argument("--id", dest="report_id", help="show a saved report instead")
    r.add_argument("--list", action="store_true", help="list saved reports")
    r.add_argument("--format", default="markdown", choices=["markdown", "md", "html", "json"],
                   help="how the report is rendered")
    r.add_argument("--output", type=Path, help="write the rendering to this file")
    r.set_defaults(handler=_report)

    e = cmds.add_parser("export", help="write the trail to a file (json, jsonl, csv)")
    add_common(e)
    e.add_argument("output", help="file to write (where this command runs)")
    e.add_argument(
        "--format", default=None, help="json | jsonl | csv (default: from the file name, else json)"
    )
    e.add_argument("--start", help="from this date/time (default: the first event)")
    e.add_argument("--end", help="up to this date/time (default: the last event)")
    e.set_defaults(handler=_export)

    v = cmds.add_parser("verify", help="verify the store's chain, or an export FILE offline")
    add_common(v)
    v.add_argument("file", nargs="?",
                   help="an export file, verified with no server (a CSV: its FILE.seal beside it)")
    v.add_argument("--public-key", help="PEM file of the store's public key (pins the signer)")
    v.add_argument("--anchor", metavar="PATH",
                   help="the checkpoint anchor kept outside the store (serve --audit-anchor): "
                   "every checkpoint in it must be in the store, its hash in the chain")
    v.add_argument("--pin", action="append", default=[], metavar="SEQ:HASH",
                   help="a hash the chain must have at SEQ, e.g. from an earlier "
                   "'audit checkpoint' (repeatable)")
    v.set_defaults(handler=_verify)

    a = cmds.add_parser("acknowledge",
                        help="accept a broken chain on a store folder (control plane stopped) "
                        "so it takes writes again; audited")
    add_common(a)
    a.add_argument("--seq", type=int, required=True, help="the seq where the chain is broken")
    a.add_argument("--actor", required=True, help="who acknowledges (audited)")
    a.add_argument("--reason", default="", help="why (audited)")
    a.set_defaults(handler=_acknowledge)

    g = cmds.add_parser("purge", help="archive, then delete events older than a date")
    add_common(g)
    g.add_argument("--before", required=True, help="delete events before this date/time")
    g.add_argument(
        "--archive", help="archive file name, kept in <data_dir>/audit/archive/ on the store's side"
    )
    g.set_defaults(handler=_purge)

    k = cmds.add_parser("checkpoint", help="sign the chain head now")
    add_common(k)
    k.set_defaults(handler=_checkpoint)

    pk = cmds.add_parser("public-key", help="print the store's checkpoint public key (PEM)")
    add_common(pk)
    pk.set_defaults(handler=_public_key)

    rk = cmds.add_parser(
        "rotate-key",
        help="replace the checkpoint key (the old one signs the head and endorses the new one)",
    )
    add_common(rk)
    rk.add_argument("--actor", required=True, help="who rotates the key (audited)")
    rk.add_argument("--reason", default="", help="why (audited)")
    rk.set_defaults(handler=_rotate_key)


def _events_table(events: list[Any]) -> None:
    print_table(
        ["seq", "time", "type", "severity", "user", "resource", "action"],
        [[e.seq, e.timestamp.strftime("%Y-%m-%d %H:%M:%S"), e.event_type, e.severity, e.actor,
          f"{e.resource_type}/{e.resource_id}", e.action] for e in events],
    )


def _query(args: argparse.Namespace) -> int:
    logger = _logger(args)
    filters = dict(
        event_type=args.types, severity=args.severity, min_severity=args.min_severity,
        user=args.user, resource_type=args.resource_type, resource_id=args.resource_id,
        start_date=_date(args.start, "since"), end_date=_date(args.end, "until", end_of_day=True),
        text=args.text,
    )
    if args.all:
        events = list(logger.iter_events(page_size=1000, **filters))
        token = ""
    else:
        page = logger.query_events(limit=args.limit, page_token=args.page_token, **filters)
        events, token = list(page), page.next_page_token

    def show() -> None:
        _events_table(events)
        if token:
            print(f"more: --page-token {token}")

    emit(args, {"events": events, "next_page_token": token}, show)
    return 0


def _report(args: argparse.Namespace) -> int:
    logger = _logger(args)
    if args.list:
        reports = logger.list_reports()
        emit(args, reports, lambda: print_table(
            ["report_id", "generated_at", "start_date", "end_date", "generated_by"],
            [[r[k] for k in ("report_id", "generated_at", "start_date", "end_date", "generated_by")]
             for r in reports]))
        return 0
    if args.report_id:
        report = logger.get_report(args.report_id)
    else:
        end = _date(args.end, "end", end_of_day=True) or datetime.now()
        start = _date(args.start, "start") or end - timedelta(days=90)
        report = logger.generate_compliance_report(start, end)
    fmt = "json" if args.json else args.format
    text = report.render(fmt)
    if args.output:
        args.output.write_text(text)
        print(f"report {report.report_id} written to {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def _export(args: argparse.Namespace) -> int:
    fmt = args.format
    if fmt is None:
        suffix = Path(args.output).suffix.lower().lstrip(".")
        fmt = suffix if suffix in ("json", "jsonl", "csv") else "json"
    result = _logger(args).export_audit_trail(
        args.output, format=fmt, start_date=_date(args.start, "start"),
        end_date=_date(args.end, "end", end_of_day=True),
    )
    emit(args, result, lambda: print_record([
        ("path", result.path), ("format", result.format), ("events", result.count),
        ("seq", f"{result.first_seq}..{result.last_seq}"), ("bytes", result.bytes_written),
        ("key_id", result.seal.get("key_id")), ("seal", result.seal_path or "inside the file"),
    ]))
    return 0


def _verify_store(args: argparse.Namespace) -> Any:
    """The store's chain with the anchor and pins: a folder read-only, here; a control
    plane's through its verification plus what a client can compare."""
    from neural.mlops._channel import is_remote
    from neural.mlops.server.audit.anchor import anchor_file, parse_pins, remote_problem
    from neural.mlops.server.audit.readonly import verify_store

    pins = parse_pins(args.pin)
    if not is_remote(args.target):
        return asyncio.run(verify_store(args.target, anchor=args.anchor, pins=pins))
    logger = _logger(args)
    result = logger.verify_chain()
    if result.valid and (args.anchor or pins):
        anchor = anchor_file(args.anchor) if args.anchor else None
        seq, why = remote_problem(logger.list_checkpoints(), anchor, pins)
        if why:
            result.valid, result.first_bad_seq, result.reason = False, seq, why
    return result


def _verify(args: argparse.Namespace) -> int:
    if args.file:
        from neural.mlops.audit import verify_export

        if args.anchor or args.pin:
            raise InvalidArgument("--anchor and --pin check a store, not an export file",
                                  field="anchor" if args.anchor else "pin")
        result = verify_export(args.file, args.public_key)
        source = args.file
    else:
        result = _verify_store(args)
        source = args.target

    def show() -> None:
        status = "VALID" if result.valid else "INVALID"
        rows: list[tuple[str, Any]] = [
            ("chain", f"{status} ({source})"),
            ("events_checked", result.events_checked),
            ("seq", f"{result.first_seq}..{result.last_seq}"),
            ("checkpoints_checked", result.checkpoints_checked),
            (
                "signature",
                {None: "none checked", True: "valid", False: "INVALID"}[result.signature_valid],
            ),
            ("key_id", result.key_id),
        ]
        if not result.valid:
            rows += [("first_bad_seq", result.first_bad_seq),
                     ("first_bad_event_id", result.first_bad_event_id), ("reason", result.reason)]
        rows += [("note", n) for n in result.notes]
        print_record(rows)

    emit(args, result, show)
    return 0 if result.valid else EXIT_INVALID_CHAIN


def _acknowledge(args: argparse.Namespace) -> int:
    from neural.mlops._channel import is_remote
    from neural.mlops._runtime import EmbeddedRuntime

    if is_remote(args.target):
        raise InvalidArgument("acknowledge works on the store folder with the control plane "
                              "stopped; or start it with serve --acknowledge-broken-chain SEQ",
                              field="target")
    runtime = EmbeddedRuntime.for_path(args.target)
    cp = runtime.call(lambda s: s.audit.acknowledge_broken_chain(args.seq, args.reason),
                      actor=args.actor)
    emit(args, cp, lambda: print_record([
        ("acknowledged", f"broken at seq {args.seq}"), ("checkpoint", f"seq {cp.seq}"),
        ("kind", cp.kind), ("key_id", cp.key_id)]))
    return 0


def _purge(args: argparse.Namespace) -> int:
    before = _date(args.before, "before")
    result = _logger(args).purge(before, args.archive)
    emit(args, result, lambda: print_record([
        ("purged", result.purged_count), ("seq", f"{result.first_seq}..{result.last_seq}"),
        ("archive", result.archive_path or "-"),
        ("checkpoint", f"seq {result.checkpoint.seq} signed by {result.checkpoint.key_id}"
         if result.checkpoint else "-"),
    ]))
    return 0


def _checkpoint(args: argparse.Namespace) -> int:
    cp = _logger(args).checkpoint()
    if args.json:
        print_json(cp)
    else:
        print_record([("seq", cp.seq), ("hash", cp.hash), ("kind", cp.kind), ("key_id", cp.key_id)]
                     if cp else [("checkpoint", "none (empty chain)")])
    return 0


def _rotate_key(args: argparse.Namespace) -> int:
    rot = _logger(args).rotate_key(args.reason, actor=args.actor)
    if args.json:
        print_json(rot)
    else:
        print_record([("old_key_id", rot.old_key_id), ("new_key_id", rot.new_key_id),
                      ("checkpoint", f"seq {rot.checkpoint.seq}" if rot.checkpoint else "-")])
        sys.stdout.write(rot.public_key_pem)
    return 0


def _public_key(args: argparse.Namespace) -> int:
    sys.stdout.write(_logger(args).public_key())
    return 0
