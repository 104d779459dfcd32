"""``neural-mlops admin``: store administration (docs/operations.md).

    neural-mlops admin migrate-store --from ./mlops-data --to postgresql+asyncpg://u@db/mlops
    neural-mlops admin backup --data-dir ./mlops-data --output mlops.backup
    neural-mlops admin backup --database-url URL --data-dir /srv/mlops --output mlops.backup
    neural-mlops admin restore --input mlops.backup --data-dir ./restored [--database-url URL]
    neural-mlops admin backup --database-url URL --artifact-store s3://bucket/mlops ...

These work on the store directly (same --data-dir / --database-url as ``serve``), not
through a control plane. ``backup`` is an online snapshot: run it while the server
serves. ``migrate-store`` and ``restore`` write only into an empty database, and verify
the audit chain and its signed checkpoints before they report success.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from neural.mlops.cli._output import print_json, print_record


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("admin", help="copy a store to PostgreSQL, back it up, restore it",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cmds = p.add_subparsers(dest="admin_command", metavar="ACTION", required=True)

    m = cmds.add_parser("migrate-store", help="copy a store (rows, artifacts, audit keys) "
                        "into another database")
    m.add_argument("--from", dest="source", required=True, metavar="DIR_OR_URL",
                   help="the store folder, or a database URL (its files in --from-data-dir)")
    m.add_argument("--from-data-dir", type=Path, help="files of a --from URL store")
    m.add_argument("--to", dest="target", required=True, metavar="URL",
                   help="database URL of the new store (an empty database)")
    m.add_argument("--data-dir", type=Path,
                   help="data dir the new store's server will use (default: the source's; "
                        "audit files and keys are copied when it differs)")
    m.add_argument("--from-artifact-store", default="", metavar="s3://BUCKET/PREFIX",
                   help="the source's S3-compatible artifact store (default: its data dir)")
    m.add_argument("--artifact-store", metavar="s3://BUCKET/PREFIX",
                   help="the new store's artifact store (default: the source's); "
                        "artifacts are copied when it differs")
    m.add_argument("--s3-endpoint-url", default="", metavar="URL",
                   help="S3 endpoint of both artifact stores (default: boto3's AWS_* setup)")
    m.add_argument("--json", action="store_true", help="print JSON for scripts")
    m.set_defaults(handler=cmd_migrate_store)

    b = cmds.add_parser("backup", help="online snapshot of a store into one file (mode 0600)")
    _store_options(b)
    b.add_argument("--output", type=Path, required=True, help="the backup file to create")
    b.add_argument("--json", action="store_true", help="print JSON for scripts")
    b.set_defaults(handler=cmd_backup)

    r = cmds.add_parser("restore", help="bring a backup back into a new store")
    _store_options(r)
    r.add_argument("--input", type=Path, required=True, help="the backup file")
    r.add_argument("--json", action="store_true", help="print JSON for scripts")
    r.set_defaults(handler=cmd_restore)


def _store_options(q: argparse.ArgumentParser) -> None:
    q.add_argument("--data-dir", type=Path, help="store folder (default ./mlops-data)")
    q.add_argument("--database-url", help="SQLAlchemy URL instead of the SQLite file")
    q.add_argument("--config", type=Path, help="TOML file with a [server] table")
    q.add_argument("--artifact-store", metavar="s3://BUCKET/PREFIX",
                   help="artifacts in an S3-compatible store (default: the data dir's models/)")
    q.add_argument("--s3-endpoint-url", metavar="URL",
                   help="endpoint of that store (default: boto3's AWS_* setup)")


def _location(args: argparse.Namespace) -> Any:
    from neural.mlops.server.admin import StoreLocation
    from neural.mlops.server.config import ServerConfig

    cfg = ServerConfig.load({"data_dir": args.data_dir, "database_url": args.database_url,
                             "artifact_store": args.artifact_store,
                             "s3_endpoint_url": args.s3_endpoint_url}, args.config)
    return StoreLocation(cfg.data_dir.resolve(), cfg.database_url, cfg.artifact_location(),
                         cfg.s3_endpoint_url)


def _report(args: argparse.Namespace, out: dict[str, Any]) -> int:
    if args.json:
        print_json(out)
    else:
        print_record(out.items())
    return 0


def cmd_migrate_store(args: argparse.Namespace) -> int:
    from neural.mlops.server.admin import StoreLocation, migrate_store

    source = StoreLocation.parse(args.source, args.from_data_dir,
                                 artifact_store=args.from_artifact_store,
                                 s3_endpoint_url=args.s3_endpoint_url)
    target = StoreLocation((args.data_dir or source.data_dir).resolve(), args.target,
                           source.artifact_store if args.artifact_store is None
                           else args.artifact_store, args.s3_endpoint_url)
    result = asyncio.run(migrate_store(source, target))
    return _report(args, {"to": target.masked_url(), "data_dir": str(target.data_dir),
                          **result.as_dict()})


def cmd_backup(args: argparse.Namespace) -> int:
    from neural.mlops.server.admin import backup

    store = _location(args)
    manifest = asyncio.run(backup(store, args.output))
    rows = {name: t["rows"] for name, t in manifest["tables"].items()}
    return _report(args, {"output": str(args.output.resolve()), "engine": manifest["engine"],
                          "revisions": manifest["revisions"], "rows": rows,
                          "files": len(manifest["files"]), "audit_head": manifest["audit_head"]})


def cmd_restore(args: argparse.Namespace) -> int:
    from neural.mlops.server.admin import restore

    target = _location(args)
    result = asyncio.run(restore(args.input.resolve(), target))
    return _report(args, {"to": target.masked_url(), "data_dir": str(target.data_dir),
                          **result.as_dict()})
