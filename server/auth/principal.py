"""Who an authenticated call is: the result of every way in (token, OIDC, mTLS)."""

from __future__ import annotations

from dataclasses import dataclass

# One normalization for declared and authenticated identities alike.
from neural.mlops.server.validation import normalize_identity

__all__ = ["Principal", "normalize_identity"]


@dataclass(frozen=True, slots=True)
class Principal:
    name: str  # normalized identity (what the audit records)
    method: str  # "token" | "oidc" | "mtls" | "none"
    token_id: str = ""  # API token id (never the secret)
    groups: tuple[str, ...] = ()  # OIDC group claims (map to roles)
