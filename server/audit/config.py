"""Settings of the audit domain: where the checkpoint key lives and how often the chain
head is signed. The environment is read here and nowhere else in the domain.

* ``NEURAL_MLOPS_AUDIT_KEY_FILE``: the Ed25519 private key (default
  ``<data_dir>/keys/audit_ed25519.pem``), e.g. on a secrets mount.
* ``NEURAL_MLOPS_AUDIT_CHECKPOINT_SECONDS``: seconds between periodic checkpoints
  (default 60; 0 turns the periodic loop off).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from neural.mlops.server.errors import InvalidArgument

KEY_ENV = "NEURAL_MLOPS_AUDIT_KEY_FILE"
CHECKPOINT_ENV = "NEURAL_MLOPS_AUDIT_CHECKPOINT_SECONDS"
DEFAULT_KEY_PATH = Path("keys") / "audit_ed25519.pem"
DEFAULT_CHECKPOINT_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class AuditConfig:
    key_path: Path
    checkpoint_interval: float  # seconds; 0 or less: no periodic checkpoints

    @classmethod
    def load(
        cls,
        data_dir: Path,
        *,
        key_path: Path | None = None,
        checkpoint_interval: float | None = None,
        environ: Mapping[str, str] = os.environ,
    ) -> AuditConfig:
        """Explicit arguments over the environment over the defaults."""
        if key_path is None:
            env_key = environ.get(KEY_ENV)
            key_path = Path(env_key).expanduser() if env_key else data_dir / DEFAULT_KEY_PATH
        if checkpoint_interval is None:
            env_interval = environ.get(CHECKPOINT_ENV)
            checkpoint_interval = (
                _seconds(env_interval) if env_interval else DEFAULT_CHECKPOINT_SECONDS
            )
        return cls(key_path=key_path, checkpoint_interval=checkpoint_interval)


def _seconds(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InvalidArgument(
            f"{CHECKPOINT_ENV} must be a number of seconds, got {text!r}", field=CHECKPOINT_ENV
        ) from None
