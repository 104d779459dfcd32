"""Audit trail: append-only, hash-chained events written in the same transaction as each change."""
