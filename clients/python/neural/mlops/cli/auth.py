"""``neural-mlops auth``: API tokens, role grants and who you are (docs/security.md).

    neural-mlops auth bootstrap --data-dir ./mlops-data        # the first admin token
    neural-mlops auth bootstrap --data-dir DIR --output admin.token   # file mode 0600
    neural-mlops auth token create ci --role author --models 'fraud-*' --expires 90d
    neural-mlops auth token list | revoke TOKEN_ID
    neural-mlops auth grant alice@example.com reviewer         # or group:ml-team
    neural-mlops auth revoke alice@example.com reviewer
    neural-mlops auth whoami | roles | grants

A token's secret is printed once, when it is created; the server keeps only its hash.
``bootstrap`` writes straight to the store (same options as ``serve``), so it also works
while the server runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from neural.mlops.cli._output import DEFAULT_TARGET, emit, print_json, print_table
from neural.mlops.server.errors import InvalidArgument

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``1y`` (or plain seconds)."""
    m = re.fullmatch(r"\s*(\d+)\s*([smhdwy]?)\s*", text.lower())
    if not m or int(m.group(1)) <= 0:
        raise InvalidArgument(f"expected a duration such as 30d, 12h or 1y, got {text!r}",
                              field="expires")
    return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2) or "s"])


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("auth", help="API tokens, role grants, whoami", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    cmds = p.add_subparsers(dest="auth_command", metavar="ACTION", required=True)

    def remote(q: argparse.ArgumentParser) -> argparse.ArgumentParser:
        q.add_argument("--target", default=os.environ.get("NEURAL_MLOPS_TARGET", DEFAULT_TARGET),
                       help="grpc://HOST:PORT of the control plane (env NEURAL_MLOPS_TARGET)")
        q.add_argument("--token", default=os.environ.get("NEURAL_MLOPS_TOKEN"),
                       help="API token (env NEURAL_MLOPS_TOKEN)")
        q.add_argument("--json", action="store_true", help="print JSON for scripts")
        return q

    b = cmds.add_parser("bootstrap", help="create an admin token directly in the store")
    b.add_argument("--data-dir", type=Path, help="store folder (default ./mlops-data)")
    b.add_argument("--database-url", help="SQLAlchemy URL instead of the SQLite file")
    b.add_argument("--config", type=Path, help="TOML file with a [server] table")
    b.add_argument("--name", default="admin", help="principal name of the token (default admin)")
    b.add_argument("--expires", help="lifetime, e.g. 30d (default: never)")
    b.add_argument("--json", action="store_true", help="print JSON for scripts")
    b.add_argument("--output", type=Path, help="write the secret to this new file (0600)")
    b.set_defaults(handler=cmd_bootstrap)

    token = cmds.add_parser("token", help="create, list or revoke API tokens")
    tk = token.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    c = remote(tk.add_parser("create", help="issue a token; prints its secret once"))
    c.add_argument("name", help="the principal the token authenticates as")
    c.add_argument("--role", action="append", required=True, help="role (repeatable)")
    c.add_argument("--models", action="append", default=[], help="model-name glob (repeatable)")
    c.add_argument("--expires", help="lifetime, e.g. 30d, 12h (default: never)")
    c.add_argument("--output", type=Path, help="write the secret to this new file (0600)")
    c.set_defaults(handler=cmd_token_create)
    ls = remote(tk.add_parser("list", help="tokens (never their secrets)"))
    ls.add_argument("--all", action="store_true", help="include revoked tokens")
    ls.set_defaults(handler=cmd_token_list)
    rv = remote(tk.add_parser("revoke", help="revoke a token; it fails on its next call"))
    rv.add_argument("token_id", help="the token's id (auth token list shows it)")
    rv.set_defaults(handler=cmd_token_revoke)

    g = remote(cmds.add_parser("grant", help="give a principal or group:NAME a role"))
    g.add_argument("subject", help="a principal, e.g. alice@example.com, or group:NAME")
    g.add_argument("role", help="a role (auth roles lists them)")
    g.add_argument("--models", default="*", help="model-name glob (default *)")
    g.set_defaults(handler=cmd_grant)
    r = remote(cmds.add_parser("revoke", help="take a role from a principal or group:NAME"))
    r.add_argument("subject", help="the principal or group:NAME")
    r.add_argument("role", help="the role to take away")
    r.add_argument("--models", default="", help="only the grant on this glob")
    r.set_defaults(handler=cmd_revoke)
    gl = remote(cmds.add_parser("grants", help="list role grants"))
    gl.add_argument("subject", nargs="?", default="", help="only this subject's grants")
    gl.set_defaults(handler=cmd_grants)
    remote(cmds.add_parser("whoami", help="who the server takes you for")).set_defaults(
        handler=cmd_whoami)
    remote(cmds.add_parser("roles", help="roles and their permissions")).set_defaults(
        handler=cmd_roles)


def _call(args: argparse.Namespace, method: str, request: Any) -> Any:
    import grpc

    from neural.mlops._channel import open_channel
    from neural.mlops._remote.connection import error_from_rpc
    from neural.mlops.v1 import auth_pb2_grpc

    channel = open_channel(args.target, token=args.token, aio=False)
    try:
        return getattr(auth_pb2_grpc.AuthServiceStub(channel), method)(request, timeout=30)
    except grpc.RpcError as err:
        raise error_from_rpc(err) from None
    finally:
        channel.close()


def _every(args: argparse.Namespace, method: str, request: Any, field: str) -> list[Any]:
    """Every item of a List RPC: its pages one after another (largest page size)."""
    items: list[Any] = []
    request.page_size = 1000
    while True:
        resp = _call(args, method, request)
        items += getattr(resp, field)
        if not resp.next_page_token:
            return items
        request.page_token = resp.next_page_token


def _dict(msg: Any) -> dict[str, Any]:
    from google.protobuf.json_format import MessageToDict

    return MessageToDict(msg, preserving_proto_field_name=True)


def _method(value: int) -> str:
    from neural.mlops.v1 import auth_pb2 as pb

    return pb.AuthMethod.Name(value).removeprefix("AUTH_METHOD_").lower()


def _token_dict(token: Any) -> dict[str, Any]:
    """The token with its state as the CLI has always shown it ("active", not the enum's
    TOKEN_STATE_ACTIVE)."""
    from neural.mlops.v1 import auth_pb2 as pb

    state = pb.TokenState.Name(token.state).removeprefix("TOKEN_STATE_").lower()
    return {**_dict(token), "state": state}


def _print_secret(args: argparse.Namespace, token: Any, secret: str) -> None:
    if args.output is not None:
        from neural.mlops.server.fsutil import write_synced

        # Owner-only from the moment the file exists; never overwrite another file.
        write_synced(args.output, (secret + "\n").encode(), mode=0o600, exclusive=True)
        print(f"token {token.token_id} for {token.name} written to {args.output} (mode 0600)",
              file=sys.stderr)
        return
    if args.json:
        print_json({"token": secret, "token_id": token.token_id, "name": token.name,
                    "roles": list(token.roles), "models": list(token.models)})
        return
    print(secret)
    print(f"token {token.token_id} for {token.name} ({', '.join(token.roles)} on "
          f"{', '.join(token.models)}); the secret is shown only now", file=sys.stderr)


def cmd_bootstrap(args: argparse.Namespace) -> int:
    from neural.mlops.server.config import ServerConfig
    from neural.mlops.server.services import Services

    cfg = ServerConfig.load({"data_dir": args.data_dir, "database_url": args.database_url},
                            args.config)
    expires = parse_duration(args.expires) if args.expires else None

    async def run() -> Any:
        services = await Services.open(cfg.data_dir, database_url=cfg.database_url)
        try:
            from neural.mlops.server.identity import CallContext, reset_call, set_call

            ctx = set_call(CallContext(actor="bootstrap", peer="bootstrap"))
            try:
                return await services.auth.create_token(args.name, ["admin"], (), expires)
            finally:
                reset_call(ctx)
        finally:
            await services.db.close()

    issued = asyncio.run(run())
    _print_secret(args, issued.token, issued.secret)
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    from neural.mlops.v1 import auth_pb2 as pb

    expires = parse_duration(args.expires) if args.expires else None
    resp = _call(args, "CreateToken", pb.CreateTokenRequest(
        name=args.name, roles=args.role, models=args.models,
        expires_in_seconds=int(expires.total_seconds()) if expires else 0))
    _print_secret(args, resp.token, resp.secret)
    return 0


_TOKEN_COLUMNS = ["token_id", "name", "roles", "models", "state", "created_by", "expires_at"]


def _token_rows(tokens: list[dict[str, Any]]) -> list[list[Any]]:
    return [[t.get(c, "-") for c in _TOKEN_COLUMNS] for t in tokens]


def cmd_token_list(args: argparse.Namespace) -> int:
    from neural.mlops.v1 import auth_pb2 as pb

    tokens = [_token_dict(t) for t in _every(
        args, "ListTokens", pb.ListTokensRequest(include_revoked=args.all), "tokens")]
    emit(args, tokens, lambda: print_table(_TOKEN_COLUMNS, _token_rows(tokens)))
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    from neural.mlops.v1 import auth_pb2 as pb

    token = _token_dict(_call(args, "RevokeToken", pb.RevokeTokenRequest(token_id=args.token_id)))
    emit(args, token, lambda: print(f"revoked token {token['token_id']} ({token['name']})"))
    return 0


def cmd_grant(args: argparse.Namespace) -> int:
    from neural.mlops.v1 import auth_pb2 as pb

    grant = _dict(_call(args, "CreateGrant", pb.CreateGrantRequest(
        subject=args.subject, role=args.role, models=args.models)))
    emit(args, grant, lambda: print(
        f"granted {grant['role']} on {grant['models']} to {grant['subject']}"))
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    from neural.mlops.v1 import auth_pb2 as pb

    resp = _call(args, "DeleteGrant", pb.DeleteGrantRequest(
        subject=args.subject, role=args.role, models=args.models))
    emit(args, {"removed": resp.removed}, lambda: print(
        f"removed {resp.removed} {args.role} grant(s) from {args.subject}"))
    return 0


_GRANT_COLUMNS = ["subject", "role", "models", "created_by"]


def _grant_rows(grants: list[dict[str, Any]]) -> list[list[Any]]:
    return [[g.get("subject", ""), g.get("role", ""), g.get("models", ""),
             g.get("created_by", "-")] for g in grants]


def cmd_grants(args: argparse.Namespace) -> int:
    from neural.mlops.v1 import auth_pb2 as pb

    grants = [_dict(g) for g in _every(
        args, "ListGrants", pb.ListGrantsRequest(subject=args.subject), "grants")]
    emit(args, grants, lambda: print_table(_GRANT_COLUMNS, _grant_rows(grants)))
    return 0


def cmd_whoami(args: argparse.Namespace) -> int:
    from neural.mlops.v1 import auth_pb2 as pb

    answer = _call(args, "WhoAmI", pb.WhoAmIRequest())
    # The methods as the CLI has always shown them ("token", not AUTH_METHOD_TOKEN).
    me = {**_dict(answer), "method": _method(answer.method),
          "auth_methods": [_method(m) for m in answer.auth_methods]}
    if args.json:
        print_json(me)
        return 0
    how = me.get("method", "none")
    state = "authenticated" if me.get("authenticated") else "NOT authenticated (declared)"
    print(f"{me.get('principal', '')} ({state}, {how}"
          + (f", token {me['token_id']}" if me.get("token_id") else "") + ")")
    if me.get("groups"):
        print("groups: " + ", ".join(me["groups"]))
    if me.get("grants"):
        print_table(_GRANT_COLUMNS, _grant_rows(me["grants"]))
    return 0


def cmd_roles(args: argparse.Namespace) -> int:
    from neural.mlops.v1 import auth_pb2 as pb

    roles = [_dict(r) for r in _every(args, "ListRoles", pb.ListRolesRequest(), "roles")]
    emit(args, roles, lambda: print_table(
        ["role", "description", "permissions"],
        [[r["name"], r.get("description", ""), r.get("permissions", [])] for r in roles]))
    return 0
