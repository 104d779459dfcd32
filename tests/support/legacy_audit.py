"""A SQLite store as the control plane left it before migration 0012: audit events hashed
with version 1 (Python's json.dumps), written here from the documented formula rather
than by the product, so tests can prove such stores keep verifying after the upgrade."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from neural.mlops.server.storage.database import MIGRATIONS, Database, sqlite_url

V1_FIELDS = ("seq", "event_id", "ts_us", "event_type", "severity", "actor", "resource_type",
             "resource_id", "action", "details", "request_id", "peer", "prev_hash")

# Details whose version 1 text differs from RFC 8785's: 1.0 and 1e-07 as Python prints them.
LEGACY_DETAILS: tuple[dict[str, Any], ...] = (
    {"accuracy": 1.0, "threshold": 1e-07, "note": "Zoë \u2028 <tab>\t"},
    {"latency_p95": 0.25, "count": 3, "nested": {"b": [1.5, None, True], "a": -0.0}},
    {},
)


def v1_text(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def v1_events(details: Sequence[Mapping[str, Any]] = LEGACY_DETAILS) -> list[dict[str, Any]]:
    """Chained version 1 events (details as objects), timestamped now."""
    prev, now_us, out = "0" * 64, int(time.time() * 1e6), []
    for n, d in enumerate(details, start=1):
        ev: dict[str, Any] = {
            "seq": n, "event_id": f"{n:032x}", "ts_us": now_us + n, "event_type": "custom",
            "severity": "info", "actor": "legacy@example.com", "resource_type": "model",
            "resource_id": f"m:{n}", "action": "touch", "details": dict(d),
            "request_id": f"req-{n}", "peer": "embedded", "prev_hash": prev,
        }
        body = {k: ev[k] for k in V1_FIELDS}
        ev["hash"] = prev = hashlib.sha256((prev + v1_text(body)).encode()).hexdigest()
        out.append(ev)
    return out


def make_pre_0012_store(store: Path, events: Sequence[Mapping[str, Any]]) -> None:
    """Create ``store`` migrated up to 0005_audit (the audit branch before 0012) holding
    ``events`` and the chain head after them."""
    store.mkdir(parents=True, exist_ok=True)

    async def build() -> None:
        db = await Database.open(sqlite_url(store), migrate=False)

        def run(conn: sa.Connection) -> None:
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0005_audit")
            cols = (*V1_FIELDS, "hash")
            insert = sa.text(f"INSERT INTO audit_events ({', '.join(cols)}) "
                             f"VALUES ({', '.join(':' + c for c in cols)})")
            for ev in events:
                conn.execute(insert, {**ev, "details": v1_text(ev["details"])})
            if events:
                conn.execute(sa.text("UPDATE audit_chain_head SET seq = :s, hash = :h"),
                             {"s": events[-1]["seq"], "h": events[-1]["hash"]})

        async with db.engine.begin() as conn:
            await conn.run_sync(run)
        await db.close()

    asyncio.run(build())
