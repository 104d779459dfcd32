"""``neural-mlops registry ...``: the model registry from a terminal."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from neural.mlops.cli._output import add_common, emit, print_record, print_table
from neural.mlops.server.errors import InvalidArgument
from neural.mlops.server.registry.lineage import DIGEST


def _kv_numbers(values: list[str] | None, field: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in values or ():
        key, sep, raw = item.partition("=")
        if not sep:
            raise InvalidArgument(f"{field} expects KEY=VALUE, got {item!r}", field=field)
        try:
            out[key] = float(raw)
        except ValueError:
            raise InvalidArgument(
                f"{field} value for {key!r} is not a number: {raw!r}", field=field
            ) from None
    return out


def _kv(values: list[str] | None, field: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values or ():
        key, sep, raw = item.partition("=")
        if not sep:
            raise InvalidArgument(f"{field} expects KEY=VALUE, got {item!r}", field=field)
        out[key] = raw
    return out


def _data_refs(values: list[str] | None) -> list[tuple[str, str]] | None:
    """``URI`` or ``URI@ALGORITHM:DIGEST`` (as in image@sha256:...) per --data."""
    if not values:
        return None
    out = []
    for item in values:
        uri, sep, digest = item.rpartition("@")
        out.append((uri, digest) if sep and DIGEST.fullmatch(digest) else (item, ""))
    return out


def _signature(text: str | None) -> Any:
    """--signature: a JSON object, or the path of a file holding one."""
    if not text:
        return None
    raw = text if text.lstrip().startswith("{") else Path(text).read_text()
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise InvalidArgument(f"--signature is not valid JSON: {exc}",
                              field="lineage.signature") from None


def _lineage_fields(lin: Any) -> list[tuple[str, Any]]:
    def tensors(ts: Any) -> str:
        return ", ".join(f"{t.name} {t.datatype}{list(t.shape)}" for t in ts) or "-"

    data = [f"{d.uri}@{d.digest}" if d.digest else d.uri for d in lin.training_data]
    return [
        ("source_run_id", lin.source_run_id), ("source_uri", lin.source_uri),
        ("code_revision", lin.code_revision), ("parent_version", lin.parent_version),
        ("training_data", data), ("inputs", tensors(lin.signature.inputs)),
        ("outputs", tensors(lin.signature.outputs)),
    ]


def _registry(args: argparse.Namespace) -> Any:
    from neural.mlops.registry import ModelRegistry

    return ModelRegistry(args.target)


def _versions_table(versions: list[Any]) -> None:
    print_table(
        ["name", "version", "stage", "framework", "metrics", "tags", "aliases", "created"],
        [[v.name, v.version, v.stage, v.framework, v.metrics, v.tags, v.aliases,
          v.created_at.strftime("%Y-%m-%d %H:%M")] for v in versions],
    )


def _version_record(v: Any) -> None:
    print_record(
        [
            ("name", v.name),
            ("version", v.version),
            ("stage", v.stage),
            ("framework", v.framework),
            ("description", v.description),
            ("created_by", v.created_by),
            ("created_at", v.created_at),
            ("metrics", v.metrics),
            ("tags", v.tags),
            ("params", v.params),
            ("aliases", v.aliases),
            ("artifact", v.artifact.uri),
            ("sha256", v.artifact.sha256),
            ("size_bytes", v.artifact.size_bytes),
            *_lineage_fields(v.lineage),
        ]
    )


def _request_record(r: Any) -> None:
    print_record([
        ("request_id", r.request_id), ("model", f"{r.name}:{r.version}"),
        ("target_stage", r.target_stage), ("status", r.status), ("requested_by", r.requested_by),
        ("reviewers", r.reviewers), ("approvals", [a.approver for a in r.approvals]),
        ("required_approvals", r.required_approvals), ("decided_by", r.decided_by),
        ("comment", r.decision_comment),
    ])


def _page(args: argparse.Namespace, page: Any) -> None:
    def render() -> None:
        _versions_table(page.items)
        if page.next_page_token:
            print(f"next page: --page-token {page.next_page_token}")

    emit(args, {"versions": page.items, "next_page_token": page.next_page_token}, render)


def cmd_register(args: argparse.Namespace) -> None:
    v = _registry(args).register_model(
        name=args.name, version=args.version, model_path=args.model_path,
        framework=args.framework, created_by=args.created_by,
        metrics=_kv_numbers(args.metric, "metric"), tags=args.tag or [],
        description=args.description, params=_kv(args.param, "param"),
        config=json.loads(args.config) if args.config else None,
        source_run_id=args.run_id, source_uri=args.source_uri, code_revision=args.code_revision,
        training_data=_data_refs(args.data), parent_version=args.parent,
        signature=_signature(args.signature),
    )
    emit(args, v, lambda: _version_record(v))


def cmd_show(args: argparse.Namespace) -> None:
    v = _registry(args).get_model_version(args.name, args.version)
    emit(args, v, lambda: _version_record(v))


def cmd_list(args: argparse.Namespace) -> None:
    if args.name:
        _page(
            args,
            _registry(args).list_versions(args.name, args.stage, args.page_size, args.page_token),
        )
        return
    page = _registry(args).list_models(args.prefix, args.page_size, args.page_token)

    def render() -> None:
        print_table(
            ["name", "versions", "latest", "aliases"],
            [
                [
                    m.name,
                    m.version_count,
                    {v.stage.value: v.version for v in m.latest_versions},
                    m.aliases,
                ]
                for m in page.items
            ],
        )
        if page.next_page_token:
            print(f"next page: --page-token {page.next_page_token}")

    emit(args, {"models": page.items, "next_page_token": page.next_page_token}, render)


def cmd_search(args: argparse.Namespace) -> None:
    _page(args, _registry(args).search_models(
        name_prefix=args.prefix, tags=args.tag, stage=args.stage, framework=args.framework,
        metric_conditions=args.where, filter=args.filter or "", page_size=args.page_size,
        page_token=args.page_token))


def cmd_request(args: argparse.Namespace) -> None:
    r = _registry(args).request_promotion(
        args.name, args.version, args.stage, requested_by=args.requested_by,
        justification=args.justification, reviewers=args.reviewer or [],
        required_approvals=args.required_approvals)
    emit(args, r, lambda: _request_record(r))


def cmd_approve(args: argparse.Namespace) -> None:
    r = _registry(args).approve_promotion(args.name, args.version, args.approver, args.comment,
                                          args.request_id)
    emit(args, r, lambda: _request_record(r))


def cmd_reject(args: argparse.Namespace) -> None:
    r = _registry(args).reject_promotion(args.name, args.version, args.rejector, args.comment,
                                         args.request_id)
    emit(args, r, lambda: _request_record(r))


def cmd_cancel(args: argparse.Namespace) -> None:
    r = _registry(args).cancel_promotion(args.name, args.version, args.cancelled_by, args.reason,
                                         args.request_id)
    emit(args, r, lambda: _request_record(r))


def cmd_pending(args: argparse.Namespace) -> None:
    reqs = _registry(args).list_pending_approvals(args.reviewer, args.name or "")
    emit(args, reqs, lambda: print_table(
        ["request_id", "model", "target", "requested_by", "reviewers", "approvals", "needed"],
        [[r.request_id, f"{r.name}:{r.version}", r.target_stage, r.requested_by, r.reviewers,
          len(r.approvals), r.required_approvals] for r in reqs]))


def cmd_compare(args: argparse.Namespace) -> None:
    cmp = _registry(args).compare_models(args.name, args.version1, args.version2)

    def render() -> None:
        print_table(["metric", args.version1, args.version2, "difference", "relative"],
                    [[k, m["version1"], m["version2"], m["difference"],
                      None if m["relative_change"] is None else f"{m['relative_change']:+.2%}"]
                     for k, m in cmp["metrics_comparison"].items()])
        for key in ("tags_only_in_version1", "tags_only_in_version2", "params_diff", "framework",
                    "stage", "size_bytes"):
            print(f"{key}: {json.dumps(cmp[key])}")
        lineage = cmp["lineage"]
        print(f"lineage changed: {', '.join(lineage['changed']) or 'nothing'}")
        for key in lineage["changed"]:
            print(f"  {key}: {json.dumps(lineage['version1'][key])} -> "
                  f"{json.dumps(lineage['version2'][key])}")

    emit(args, cmp, render)


def cmd_download(args: argparse.Namespace) -> None:
    path = _registry(args).download_artifact(args.name, args.version, args.output)
    emit(args, {"path": str(path)}, lambda: print(f"wrote {path} (sha256 verified)"))


def cmd_alias(args: argparse.Namespace) -> None:
    reg = _registry(args)
    if args.action == "set":
        if not args.version:
            raise InvalidArgument("alias set needs VERSION", field="version")
        change = reg.set_alias(args.name, args.alias, args.version, args.actor, args.reason)
    elif args.action == "delete":
        change = reg.delete_alias(args.name, args.alias, args.actor, args.reason)
    else:
        change = reg.rollback_alias(args.name, args.alias, args.actor, args.reason)
    emit(
        args,
        change,
        lambda: print(
            f"{change.name}@{change.alias}: "
            f"{change.previous_version or '-'} -> {change.version or '-'}"
        ),
    )


def cmd_history(args: argparse.Namespace) -> None:
    entries = _registry(args).get_history(args.name, args.version or "")
    emit(args, entries, lambda: print_table(
        ["at", "kind", "version", "alias", "from", "to", "actor", "reason"],
        [[h.at.strftime("%Y-%m-%d %H:%M:%S"), h.kind, h.version, h.alias, h.from_value, h.to_value,
          h.actor, h.reason] for h in entries]))


def cmd_archive(args: argparse.Namespace) -> None:
    v = _registry(args).archive_model(args.name, args.version, args.actor, args.reason)
    emit(args, v, lambda: _version_record(v))


def cmd_delete(args: argparse.Namespace) -> None:
    _registry(args).delete_model_version(args.name, args.version, args.actor)
    emit(args, {"deleted": f"{args.name}:{args.version}"},
         lambda: print(f"deleted {args.name}:{args.version}"))


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("registry", help="register, find, promote and compare model versions")
    rs = p.add_subparsers(dest="registry_command", metavar="ACTION", required=True)

    def cmd(name: str, handler: Any, help: str) -> argparse.ArgumentParser:
        q = rs.add_parser(name, help=help)
        add_common(q)
        q.set_defaults(handler=handler)
        return q

    def paging(q: argparse.ArgumentParser) -> None:
        q.add_argument("--page-size", type=int, default=0)
        q.add_argument("--page-token", default="")

    q = cmd("register", cmd_register, "register a model version")
    q.add_argument("name", help="model name (created on its first version)")
    q.add_argument("version", help="the new version, e.g. 1.2.0 (unique within the model)")
    q.add_argument("--model-path", help="artifact file to upload, or an s3:// gs:// file:// URI")
    q.add_argument("--framework", default="", help="e.g. pytorch, sklearn (free text)")
    q.add_argument("--created-by", required=True, help="who registers it (audited)")
    q.add_argument("--metric", action="append", metavar="NAME=VALUE",
                   help="an evaluation metric (repeat for several; default: none)")
    q.add_argument("--tag", action="append", help="a tag (repeat for several; default: none)")
    q.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="a training parameter (repeat for several; default: none)")
    q.add_argument("--config", metavar="JSON",
                   help="the training configuration, a JSON object (default: none)")
    q.add_argument("--description", default="", help="free text shown with the version")
    q.add_argument("--run-id", help="lineage: the training run's id (MLflow, W&B...)")
    q.add_argument("--source-uri", help="lineage: the training run's URI")
    q.add_argument("--code-revision", help="lineage: the git commit trained from (7-40 hex)")
    q.add_argument("--data", action="append", metavar="URI[@ALGORITHM:DIGEST]",
                   help="lineage: a training data set, e.g. s3://b/train.parquet@sha256:<hex> "
                   "(repeat for several)")
    q.add_argument("--parent", help="lineage: the version of this model it derives from "
                   "(VERSION or @alias)")
    q.add_argument("--signature", metavar="JSON|FILE",
                   help='lineage: {"inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],'
                   ' "outputs": [...]} (OIP datatypes), inline or in a file')

    for name in ("show", "get"):
        q = cmd(name, cmd_show, "show one version (VERSION or @alias) with its lineage")
        q.add_argument("name", help="model name")
        q.add_argument("version", help="VERSION, or @alias for the version an alias names")

    q = cmd("list", cmd_list, "list models, or the versions of one model")
    q.add_argument("name", nargs="?", help="list this model's versions (default: list models)")
    q.add_argument("--prefix", default="", help="only models whose name starts with this")
    q.add_argument("--stage", help="only versions in this stage (with NAME; default: any)")
    paging(q)

    q = cmd("search", cmd_search,
            "search versions by name prefix, tag, stage, framework, metrics, lineage")
    q.add_argument("--prefix", default="", help="model name prefix")
    q.add_argument("--tag", action="append", help="versions with this tag (repeatable: all)")
    q.add_argument("--stage", help="versions in this stage (default: any)")
    q.add_argument("--framework", default="", help="versions of this framework")
    q.add_argument("--where", action="append", metavar="'METRIC OP VALUE'",
                   help="e.g. 'accuracy >= 0.9' (repeatable)")
    q.add_argument("--filter", help="e.g. 'accuracy >= 0.9 and tag = fraud', "
                   "'run_id = X', 'code_revision = 9fceb02', 'parent = 1.0.0', 'data = s3://...'")
    paging(q)

    q = cmd("request-promotion", cmd_request, "ask for a version to enter STAGING or PRODUCTION")
    q.add_argument("name", help="model name")
    q.add_argument("version", help="the version to promote")
    q.add_argument("--stage", default="production", help="staging or production")
    q.add_argument("--requested-by", required=True,
                   help="who asks (may not approve it: four-eyes rule; audited)")
    q.add_argument("--justification", default="", help="why, shown to the reviewers")
    q.add_argument("--reviewer", action="append",
                   help="who may approve (repeatable; default: anyone with the right)")
    q.add_argument("--required-approvals", type=int, default=1,
                   help="approvals needed before the version moves")

    for name, handler, who in (
        ("approve", cmd_approve, "approver"),
        ("reject", cmd_reject, "rejector"),
        ("cancel", cmd_cancel, "cancelled_by"),
    ):
        q = cmd(name, handler, f"{name} a pending promotion request")
        q.add_argument("name", help="model name")
        q.add_argument("version", help="the version whose promotion is pending")
        q.add_argument(
            f"--{who.replace('_', '-')}",
            dest=who,
            required=True,
            help=f"who does it (audited{'' if name == 'cancel' else '; not the requester'})",
        )
        q.add_argument("--comment" if name != "cancel" else "--reason",
                       dest="comment" if name != "cancel" else "reason", default="",
                       help="a note for the record" if name != "cancel" else "why (audited)")
        q.add_argument("--request-id", default="",
                       help="which request, when the version has several pending "
                       "(default: its only one)")

    q = cmd("pending", cmd_pending, "pending promotion requests")
    q.add_argument("--reviewer", default="", help="only what this person may approve")
    q.add_argument("--name", help="only requests for this model")

    q = cmd("compare", cmd_compare, "compare two versions' metrics, tags, params and lineage")
    q.add_argument("name", help="model name")
    q.add_argument("version1", help="the version compared against (the baseline)")
    q.add_argument("version2", help="the version compared")

    q = cmd("download", cmd_download, "download a stored artifact, verifying its SHA-256")
    q.add_argument("name", help="model name")
    q.add_argument("version", help="VERSION or @alias")
    q.add_argument("--output", "-o", default=".",
                   help="a file to write, or a folder to put the artifact's own file name in")

    q = cmd("alias", cmd_alias, "set, delete or roll back an alias (champion, challenger...)")
    q.add_argument("action", choices=["set", "delete", "rollback"],
                   help="set: point ALIAS at VERSION; delete it; rollback: to its previous version")
    q.add_argument("name", help="model name")
    q.add_argument("alias", help="the alias, e.g. champion")
    q.add_argument("version", nargs="?", help="the version to point at (set only)")
    q.add_argument("--actor", required=True)
    q.add_argument("--reason", default="")

    q = cmd("history", cmd_history, "stage changes and alias moves")
    q.add_argument("name", help="model name")
    q.add_argument("version", nargs="?", help="only this version's (default: every version's)")

    q = cmd("archive", cmd_archive, "move a version to ARCHIVED")
    q.add_argument("name", help="model name")
    q.add_argument("version", help="the version to archive")
    q.add_argument("--actor", required=True)
    q.add_argument("--reason", default="")

    q = cmd("delete", cmd_delete, "delete a version that is not in PRODUCTION")
    q.add_argument("name", help="model name")
    q.add_argument("version", help="the version to delete")
    q.add_argument("--actor", required=True)
