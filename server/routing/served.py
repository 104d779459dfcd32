"""Routes this control plane served before its current tables, as the store remembers them.

A replica learns which routes and variants a sidecar may report from the routing tables
it compiled itself. A replica (re)started after a route changed never compiled the old
shape: a canary variant of a completed rollout, a rolled-back deployment, an ended
experiment. Sidecars still hold windows of those in their backlog (cut before the
change, unacknowledged when a replica died) and resend them to whichever replica is up;
refusing them there loses metrics the sidecar measured for a route that did exist.

The traffic store is the shared memory of what was served: a ``(route, variant)`` with a
running total was accepted earlier by a replica that served it, so accepting more of its
windows introduces no name a sidecar could not have measured. A route whose per-unit
totals exist was an experiment (only experiment windows carry units). A shadow was
served if its shadow deployment exists in the store (stopped or not) or a replica
accepted windows of it before: a shadow stopped before this replica started, whose last
windows a sidecar still holds, is taken like the canary backlog.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from neural.mlops.server import traffic
from neural.mlops.server.experiments import unitstore
from neural.mlops.server.routing.ingest import KnownRoute
from neural.mlops.server.storage import Database
from neural.mlops.server.storage.schema import shadow_deployments, shadow_windows
from neural.mlops.server.traffic.store import TOTAL

# Route ids looked up per refused batch: a real backlog names a handful; a batch naming
# more is refused as it was, without a query per name.
MAX_LOOKUPS = 32


async def served_routes(db: Database, route_ids: Iterable[str]) -> dict[str, KnownRoute]:
    """Of ``route_ids``, those the store holds traffic of, with the variants it holds."""
    wanted = sorted(set(route_ids))
    if len(wanted) > MAX_LOOKUPS:
        return {}
    out: dict[str, KnownRoute] = {}
    async with db.read() as conn:
        for route_id in wanted:
            variants = frozenset(await traffic.totals(conn, route_id))
            if not variants:
                continue
            kind = "experiment" if await unitstore.totals(conn, route_id) else ""
            out[route_id] = KnownRoute(variants, frozenset(), kind)
    return out


async def served_shadows(db: Database, shadow_ids: Iterable[str]) -> set[str]:
    """Of ``shadow_ids``, those the store knows were served (see the module docstring)."""
    wanted = sorted(set(shadow_ids))
    if not wanted or len(wanted) > MAX_LOOKUPS:
        return set()
    d, w = shadow_deployments, shadow_windows
    query = sa.union(
        sa.select(d.c.shadow_id).where(d.c.shadow_id.in_(wanted)),
        sa.select(w.c.shadow_id).where(w.c.shadow_id.in_(wanted), w.c.window_start_us == TOTAL),
    )
    async with db.read() as conn:
        return {row[0] for row in await conn.execute(query)}
