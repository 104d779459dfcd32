"""Which sidecars this control plane knows of, for ``ListSidecars`` (the console's
overview): those watching routes on this process right now (peer address, when the
stream opened, the last table version sent), merged with every sidecar whose metric
batches are still kept in the store (their newest batch, whichever replica took it).

A sidecar connected to another replica shows with its last report only; each replica
lists its own streams (docs/operations.md).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import sqlalchemy as sa

from neural.mlops.server.clock import Clock, to_us
from neural.mlops.server.pagination import keyset
from neural.mlops.server.storage import Database
from neural.mlops.server.storage.schema import metric_batches

MAX_PAGE = 1000


@dataclass(frozen=True, slots=True)
class SidecarInfo:
    sidecar_id: str
    address: str = ""
    connected: bool = False
    connected_us: int = 0
    table_version: int = 0
    last_report_us: int = 0


class SidecarRegistry:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._streams: dict[int, SidecarInfo] = {}
        self._ids = itertools.count(1)

    def connected(self, sidecar_id: str, peer: str) -> int:
        """A WatchRoutes stream opened; returns its handle for :meth:`sent`/:meth:`gone`."""
        handle = next(self._ids)
        self._streams[handle] = SidecarInfo(sidecar_id, peer, True, to_us(self.clock.now()))
        return handle

    def sent(self, handle: int, version: int) -> None:
        info = self._streams.get(handle)
        if info is not None:
            self._streams[handle] = replace(info, table_version=version)

    def gone(self, handle: int) -> None:
        self._streams.pop(handle, None)

    async def _reports(self) -> dict[str, int]:
        t = metric_batches
        async with self.db.read() as conn:
            rows = await conn.execute(
                sa.select(t.c.sidecar_id, sa.func.max(t.c.received_us)).group_by(t.c.sidecar_id))
            return {row[0]: int(row[1]) for row in rows}

    async def list(self, page_size: int, page_token: str) -> tuple[list[SidecarInfo], str]:
        reports = await self._reports()
        merged: dict[str, SidecarInfo] = {
            sid: SidecarInfo(sid, last_report_us=us) for sid, us in reports.items()}
        # the newest stream of a sidecar id wins (a reconnect before the old one closed)
        for info in sorted(self._streams.values(), key=lambda i: i.connected_us):
            merged[info.sidecar_id] = replace(info,
                                              last_report_us=reports.get(info.sidecar_id, 0))
        return keyset(list(merged.values()), page_size, page_token, listing="sidecars",
                      key=lambda i: (i.sidecar_id,), kinds=(str,), maximum=MAX_PAGE)
