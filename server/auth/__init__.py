"""Authentication and authorization of control-plane calls (see docs/security.md)."""

from neural.mlops.server.auth.principal import Principal, normalize_identity

__all__ = ["Principal", "normalize_identity"]
