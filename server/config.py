"""One typed configuration object for the control plane: CLI flags over environment
(``NEURAL_MLOPS_*``) over an optional TOML file over defaults."""

from __future__ import annotations

import os
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

DEFAULT_LISTEN = "127.0.0.1:50051"


@dataclass(frozen=True)
class ServerConfig:
    data_dir: Path = Path("./mlops-data")
    listen: str = DEFAULT_LISTEN
    database_url: str = ""  # empty = SQLite file in data_dir
    log_level: str = "info"
    grace_seconds: float = 10.0
    rollout_interval_seconds: float = 1.0

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
                typed[f.name] = type(default)(raw) if not isinstance(default, Path) else Path(raw)
        return cls(**typed)

    def masked(self) -> dict[str, Any]:
        """The configuration as printed at start-up, secrets masked."""
        out = {k: str(v) for k, v in asdict(self).items()}
        if "@" in out["database_url"]:
            scheme, rest = out["database_url"].split("://", 1)
            out["database_url"] = f"{scheme}://***@{rest.split('@', 1)[1]}"
        return out
