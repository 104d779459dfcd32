"""Who an authenticated call is: the result of every way in (token, OIDC, mTLS)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass


def normalize_identity(name: str) -> str:
    """The form identities are compared and recorded in: trimmed, NFC, and case-folded
    when e-mail-like (mail providers treat the address case-insensitively; other names,
    such as SPIFFE URIs and token names, keep their case)."""
    text = unicodedata.normalize("NFC", name.strip())
    return text.casefold() if "@" in text else text


@dataclass(frozen=True, slots=True)
class Principal:
    name: str  # normalized identity (what the audit records)
    method: str  # "token" | "oidc" | "mtls" | "none"
    token_id: str = ""  # API token id (never the secret)
    groups: tuple[str, ...] = ()  # OIDC group claims (map to roles)
