"""The routing service: compiles the providers' routes into one versioned table, pushes
every new version to all watchers, and ingests the sidecars' metric batches exactly once.

Domains register a :class:`RouteProvider` with :meth:`RoutingService.add_provider` and
call ``change.on_commit(services.routing.invalidate)`` after any change that may alter
routes. A recompile whose content differs from the last table bumps the persisted
version (``routing_state``), so versions only grow, across restarts and replicas. The
running server also recompiles every ``poll_seconds`` to pick up changes written by
other processes sharing the store (e.g. the embedded Python API on the same folder). On
PostgreSQL the replicas tell each other at commit instead (:mod:`.notify`) and the poll is
only a slow safety net.

Metric batches: each ``(sidecar_id, sequence)`` is recorded in ``metric_batches`` in the
same transaction that folds its windows into the traffic store, so a batch that is
resent after a lost acknowledgement changes nothing (exactly-once application).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, replace

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from neural.mlops.server.clock import Clock, SystemClock, to_us
from neural.mlops.server.errors import InvalidArgument
from neural.mlops.server.identity import current_call
from neural.mlops.server.routing import ingest
from neural.mlops.server.routing.compose import compose
from neural.mlops.server.routing.ingest import (
    DEDUP_RETENTION_US,
    KnownRoute,
    MetricsBatch,
    ShadowWindow,
    VariantWindow,
)
from neural.mlops.server.routing.model import ModelRoute, RouteProvider, RouteVariant
from neural.mlops.server.routing.served import served_routes, served_shadows
from neural.mlops.server.storage import Database
from neural.mlops.server.storage.schema import routing_state
from neural.mlops.v1 import targeting
from neural.mlops.v1.assignment import Strategy, validate_weights

__all__ = ["MetricsBatch", "RoutingService", "RoutingTable", "ShadowWindow", "VariantWindow"]

log = structlog.get_logger(__name__)

PRUNE_EVERY_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class RoutingTable:
    version: int
    generated_us: int
    routes: tuple[ModelRoute, ...]


def _validate_route(route: ModelRoute) -> ModelRoute:
    """A route as the sidecars will receive it; raises ValueError if it cannot be served."""
    if not route.model_name:
        raise ValueError("model_name is empty")
    if not route.route_id:
        raise ValueError("route_id is empty")
    if route.strategy != "bandit":  # bandit: HASH by the current weights, sticky in sidecars
        Strategy(route.strategy)
    variants = route.variants
    if not variants:
        # A shadow-only route: everything goes to the model the caller asked for.
        variants = (RouteVariant(name="primary", weight=1.0, model_name=route.model_name),)
    validate_weights([v.weight for v in variants])
    names = [v.name for v in variants]
    if len(set(names)) != len(names) or not all(names):
        raise ValueError(f"variant names must be unique and non-empty: {names}")
    for unit, name in route.forced_variants:
        if name not in names:
            raise ValueError(f"forced variant {name!r} for {unit!r} is not a variant")
    for s in route.shadows:
        if not 0.0 <= s.percentage <= 100.0:
            raise ValueError(f"shadow {s.shadow_id!r}: percentage {s.percentage} not in [0, 100]")
    if not 0.0 <= route.range_start < route.range_end <= 1.0:
        raise ValueError(f"range [{route.range_start}, {route.range_end}) is not in [0, 1]")
    targeting.canonical(route.targeting)
    return replace(route, variants=variants)


def _digest(routes: tuple[ModelRoute, ...]) -> str:
    body = json.dumps([asdict(r) for r in routes], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


class RoutingService:
    def __init__(
        self, db: Database, *, clock: Clock | None = None, poll_seconds: float = 0.5
    ) -> None:
        self.db = db
        self.clock = clock or SystemClock()
        self.poll_seconds = poll_seconds
        self.providers: list[RouteProvider] = []
        self._table: RoutingTable | None = None
        self._digest = ""
        self._dirty = True
        self._lock: asyncio.Lock | None = None
        self._changed: asyncio.Event | None = None
        self._pending: asyncio.Task[None] | None = None
        self._poller: asyncio.Task[None] | None = None
        self.watchers = 0
        # Every route any table of this process served: what sidecars may report on.
        self._known: dict[str, KnownRoute] = {}

    # --- routes -----------------------------------------------------------------

    def add_provider(self, provider: RouteProvider) -> None:
        """Register a domain whose ``active_routes`` contribute to the table."""
        self.providers.append(provider)
        self.invalidate()

    def invalidate(self) -> None:
        """Routes may have changed: recompile soon (at once when sidecars are watching)."""
        self._dirty = True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self.watchers and (self._pending is None or self._pending.done()):
            self._pending = loop.create_task(self._refresh_while_dirty())

    async def _refresh_while_dirty(self) -> None:
        # Again if invalidated during a recompile: that one may have read the store before
        # the change committed (a notice from another replica arrives at any moment).
        while self._dirty:
            try:
                await self.refresh()
            except Exception as exc:  # noqa: BLE001 - an outage: the poller tries again
                log.warning("routing refresh failed", error=f"{type(exc).__name__}: {exc}")
                return

    async def current(self) -> RoutingTable:
        """The newest table (recompiled first if anything was invalidated)."""
        if self._dirty or self._table is None:
            return await self.refresh()
        return self._table

    async def refresh(self) -> RoutingTable:
        """Compile the providers' routes; persist a new version if the content changed."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            self._dirty = False
            async with self.db.read() as conn:
                routes = await self._collect(conn)
            digest = _digest(routes)
            now_us = to_us(self.clock.now())
            if self._table is not None and self._digest == digest:
                return self._table
            async with self.db.change(audited=False) as ch:
                # Collected again under the store's writer lock: no route change commits
                # between this read and the version written below. Otherwise a replica that
                # read before another's change could write its stale content under a newer
                # version than the other's, and the replicas would disagree for good.
                routes = await self._collect(ch.conn)
                digest = _digest(routes)
                row = (
                    await ch.conn.execute(
                        sa.select(routing_state.c.version, routing_state.c.digest).where(
                            routing_state.c.id == 1
                        )
                    )
                ).one_or_none()
                if row is None:
                    version = 1
                    await ch.conn.execute(
                        sa.insert(routing_state).values(
                            id=1, version=version, digest=digest, updated_us=now_us
                        )
                    )
                elif row.digest != digest:
                    version = int(row.version) + 1
                    await ch.conn.execute(
                        sa.update(routing_state)
                        .where(routing_state.c.id == 1)
                        .values(version=version, digest=digest, updated_us=now_us)
                    )
                else:
                    version = int(row.version)
            old = self._table.version if self._table else 0
            self._table = RoutingTable(version=version, generated_us=now_us, routes=routes)
            self._digest = digest
            if version != old:
                log.info("routing table compiled", version=version, routes=len(routes))
                self._notify()
            return self._table

    async def _collect(self, conn: AsyncConnection) -> tuple[ModelRoute, ...]:
        routes: list[ModelRoute] = []
        for provider in list(self.providers):
            try:
                found = await provider.active_routes(conn)
            except Exception:  # noqa: BLE001 - one broken domain must not stop routing
                log.exception("route provider failed", provider=type(provider).__name__)
                continue
            for raw in found:
                try:
                    route = _validate_route(raw)
                except ValueError as exc:
                    log.error("route rejected", route_id=raw.route_id,
                              model=raw.model_name, error=str(exc))
                    continue
                self._remember(route)
                routes.append(route)
        return compose(routes)

    def _remember(self, route: ModelRoute) -> None:
        before = self._known.get(route.route_id, KnownRoute(frozenset(), frozenset()))
        self._known[route.route_id] = KnownRoute(
            before.variants | {v.name for v in route.variants},
            before.shadows | {s.shadow_id for s in route.shadows},
            route.kind or before.kind,
        )

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
        self._changed = asyncio.Event()

    async def watch(self) -> AsyncIterator[RoutingTable]:
        """The current table, then every new version (latest only, never a backlog)."""
        self.watchers += 1
        try:
            table = await self.current()
            yield table
            while True:
                if self._changed is None:
                    self._changed = asyncio.Event()
                changed = self._changed
                if self._table is not None and self._table.version != table.version:
                    table = self._table
                    yield table
                    continue
                await changed.wait()
        finally:
            self.watchers -= 1

    async def run_poller(self) -> None:
        """Recompile periodically (changes made by other processes on the same store) and
        forget old dedup markers once an hour."""
        last_prune = self.clock.monotonic()
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                if self.watchers:
                    self._dirty = True
                    await self.refresh()
                if self.clock.monotonic() - last_prune > PRUNE_EVERY_SECONDS:
                    last_prune = self.clock.monotonic()
                    await self.prune_dedup()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - keep polling through transient errors
                log.exception("routing refresh failed")

    def start(self) -> None:
        if self._poller is None:
            self._poller = asyncio.get_running_loop().create_task(self.run_poller())

    async def stop(self) -> None:
        for task in (self._poller, self._pending):
            if task is not None:
                task.cancel()
        self._poller = None

    # --- metrics ----------------------------------------------------------------

    async def ingest(self, batch: MetricsBatch) -> bool:
        """Apply one batch exactly once; returns True if it had been applied before.
        Raises InvalidArgument (nothing applied) for a window no sidecar could measure."""
        try:
            ingest.check_batch(batch, self._known)
        except InvalidArgument as exc:
            if exc.field not in ("route_id", "variant", "shadow_id"):
                raise
            # A route created a moment ago (or by another process): recompile, then judge.
            self._dirty = True
            await self.current()
            try:
                ingest.check_batch(batch, self._known)
            except InvalidArgument as again:
                if again.field not in ("route_id", "variant", "shadow_id"):
                    raise
                # A route or shadow that changed before this replica started: its store
                # remembers.
                await self._learn_served({w.route_id for w in batch.windows})
                await self._learn_shadows(batch)
                ingest.check_batch(batch, self._known)
        call = current_call()
        owner = call.actor if call.authenticated else None
        return await ingest.apply_batch(self.db, batch, to_us(self.clock.now()), owner)

    async def _learn_served(self, route_ids: set[str]) -> None:
        for route_id, seen in (await served_routes(self.db, route_ids)).items():
            before = self._known.get(route_id, KnownRoute(frozenset(), frozenset()))
            self._known[route_id] = KnownRoute(before.variants | seen.variants, before.shadows,
                                               before.kind or seen.kind)

    async def _learn_shadows(self, batch: MetricsBatch) -> None:
        served = await served_shadows(self.db, {s.shadow_id for s in batch.shadows})
        for sw in batch.shadows:
            if sw.shadow_id in served:
                before = self._known.get(sw.route_id, KnownRoute(frozenset(), frozenset()))
                self._known[sw.route_id] = KnownRoute(before.variants,
                                                      before.shadows | {sw.shadow_id},
                                                      before.kind)

    async def prune_dedup(self, older_than_us: int | None = None) -> int:
        """Forget dedup markers older than the retention (no sidecar resends that late)."""
        cutoff = (
            older_than_us
            if older_than_us is not None
            else to_us(self.clock.now()) - DEDUP_RETENTION_US
        )
        return await ingest.prune(self.db, cutoff)
