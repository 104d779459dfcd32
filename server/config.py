"""One typed configuration object for the control plane: CLI flags over environment
(``NEURAL_MLOPS_*``) over an optional TOML file over defaults."""

from __future__ import annotations

import os
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from neural.mlops.server.deployments.model import GatePolicy
from neural.mlops.v1.upstream import UpstreamAllowList

DEFAULT_LISTEN = "127.0.0.1:50051"
AUTH_METHODS = ("none", "token", "oidc", "mtls")


def _typed(default: Any, raw: Any, name: str) -> Any:
    if isinstance(default, str) and isinstance(raw, list | tuple):
        return ",".join(str(item) for item in raw)  # a TOML array for a comma-list field
    if isinstance(default, Path):
        return Path(raw)
    if isinstance(default, bool) and isinstance(raw, str):
        # bool("false") is True: environment and file strings need an explicit parse.
        text = raw.strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(f"{name}: expected true or false, got {raw!r}")
    return type(default)(raw)


@dataclass(frozen=True)
class ServerConfig:
    data_dir: Path = Path("./mlops-data")
    listen: str = DEFAULT_LISTEN
    database_url: str = ""  # empty = SQLite file in data_dir
    log_level: str = "info"
    grace_seconds: float = 10.0
    # HOST:PORT of a Prometheus /metrics endpoint ("" = none): refused calls by reason.
    metrics_listen: str = ""
    rollout_interval_seconds: float = 1.0
    # Authentication (docs/security.md). ``auth`` is a comma list of none|token|oidc|mtls.
    auth: str = "none"
    insecure: bool = False  # allow a non-loopback listen address without authentication
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    oidc_issuer: str = ""
    oidc_audience: str = ""
    oidc_jwks: str = ""  # file path or http(s) URL
    oidc_user_claim: str = "email"
    oidc_groups_claim: str = "groups"
    # Deployments (docs/deployments.md): the lowest registry stage a serving rollout admits
    # (production | staging), and the fnmatch patterns over HOST:PORT that a deployment's
    # or shadow's upstream must match (comma list; empty: any well-formed HOST:PORT).
    deploy_gate: str = GatePolicy.PRODUCTION.value
    allowed_upstreams: str = ""
    # Audit (docs/audit.md): a file or folder outside the store that receives a copy of
    # every signed checkpoint, and the seq of a broken chain the operator accepts at start
    # (-1: none; a store whose chain is broken otherwise refuses every change).
    audit_anchor: str = ""
    acknowledge_broken_chain: int = -1
    # Artifacts (docs/operations.md): "" keeps them under data_dir/models; s3://BUCKET/PREFIX
    # puts them in an S3-compatible object store (credentials, region and, unless set here,
    # the endpoint from boto3's standard AWS_* environment and files).
    artifact_store: str = ""
    s3_endpoint_url: str = ""
    # Web console (docs/security.md): HOST:PORT, "" = 127.0.0.1:8080 falling back to an
    # ephemeral port when that one is busy, "off" = no console; sessions expire after
    # console_session_hours, or console_idle_minutes without use.
    http_listen: str = ""
    console_session_hours: float = 8.0
    console_idle_minutes: float = 60.0

    @classmethod
    def load(cls, overrides: dict[str, Any], config_file: Path | None = None) -> ServerConfig:
        values: dict[str, Any] = {}
        if config_file is not None:
            values.update(tomllib.loads(config_file.read_text()).get("server", {}))
        for f in fields(cls):
            env = os.environ.get(f"NEURAL_MLOPS_{f.name.upper()}")
            if env is not None:
                values[f.name] = env
        values.update({k: v for k, v in overrides.items() if v is not None})
        typed: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in values:
                raw = values[f.name]
                default = getattr(cls, f.name)
                typed[f.name] = _typed(default, raw, f.name)
        cfg = cls(**typed)
        cfg.auth_methods()  # an unknown method fails at load, not at the first call
        cfg.gate_policy()
        cfg.upstream_allow_list()
        cfg.anchor_path()
        cfg.artifact_location()
        return cfg

    def auth_methods(self) -> frozenset[str]:
        """The configured ways in; ``none`` alone when nothing else is configured."""
        methods = frozenset(m.strip().lower() for m in self.auth.split(",") if m.strip())
        unknown = sorted(methods - set(AUTH_METHODS))
        if unknown:
            raise ValueError(
                f"auth: unknown method(s) {', '.join(unknown)}; use {'|'.join(AUTH_METHODS)}"
            )
        if len(methods) > 1 and "none" in methods:
            raise ValueError("auth: 'none' cannot be combined with other methods")
        return methods or frozenset({"none"})

    def gate_policy(self) -> GatePolicy:
        try:
            return GatePolicy(self.deploy_gate.strip().lower())
        except ValueError:
            raise ValueError(f"deploy_gate: expected production or staging, got "
                             f"{self.deploy_gate!r}") from None

    def upstream_allow_list(self) -> UpstreamAllowList:
        """Empty when no pattern is configured: every well-formed upstream is accepted."""
        return UpstreamAllowList(self.allowed_upstreams)

    def anchor_path(self) -> Path | None:
        """The audit anchor (a file, or a folder holding it); None when not configured."""
        if not self.audit_anchor:
            return None
        path = Path(self.audit_anchor).expanduser()
        if not (path.is_dir() or path.parent.is_dir()):
            raise ValueError(f"audit_anchor: {path.parent} is not a folder")
        return path

    def artifact_location(self) -> str:
        """``artifact_store`` checked: "" (the data folder) or ``s3://BUCKET[/PREFIX]``."""
        if self.artifact_store:
            from neural.mlops.server.registry.artifacts_s3 import S3Location

            S3Location.parse(self.artifact_store)
        return self.artifact_store

    def acknowledged_seq(self) -> int | None:
        """The seq of the broken audit chain the operator accepts, None when none."""
        return None if self.acknowledge_broken_chain < 0 else self.acknowledge_broken_chain

    @property
    def authenticates(self) -> bool:
        return self.auth_methods() != {"none"}

    def masked(self) -> dict[str, Any]:
        """The configuration as printed at start-up, secrets masked."""
        out = {k: str(v) for k, v in asdict(self).items()}
        if "@" in out["database_url"]:
            scheme, rest = out["database_url"].split("://", 1)
            out["database_url"] = f"{scheme}://***@{rest.split('@', 1)[1]}"
        return out
