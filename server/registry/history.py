"""A model's history: every stage and alias move, append-only, oldest first."""

from __future__ import annotations

from neural.mlops.server import validation as v
from neural.mlops.server.registry import store
from neural.mlops.server.registry.model import HistoryEntry
from neural.mlops.server.storage import Database


async def history(db: Database, name: str, version: str = "") -> list[HistoryEntry]:
    """The moves of model ``name``; with ``version`` (or ``@alias``), those of that version
    and the alias moves away from it."""
    v.name(name, "name")
    async with db.read() as conn:
        await store.require_model(conn, name)
        resolved = (await store.resolve(conn, name, version)).version if version else ""
        return await store.history(conn, name, resolved)
