"""The sidecar's two streams to the control plane: routes down, metric batches up.

Both reconnect with capped exponential backoff and full jitter. Neither ever blocks the
request path: the route watcher swaps in tables as they arrive and otherwise keeps the
last one (fail-static); the reporter keeps unacknowledged batches in a bounded backlog
(oldest dropped first, counted) and resends them, in order, on every new stream. The
control plane deduplicates on ``(sidecar_id, sequence)``, so a resend after a lost ack
is harmless.

With several control-plane replicas (``--control-plane a:1,b:2``) both streams share one
gRPC channel over all of them (:mod:`neural.mlops.v1.replicas`): a reconnect lands on a
replica that is up, and a batch resent there is deduplicated in the shared store.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections import OrderedDict

import grpc
import structlog

from neural.mlops.sidecar.metrics import Aggregator
from neural.mlops.sidecar.router import Router
from neural.mlops.v1 import routing_pb2, routing_pb2_grpc

log = structlog.get_logger(__name__)


class StreamEnded(Exception):
    """The control plane closed a stream without an error."""


class Backoff:
    def __init__(self, initial: float = 0.1, maximum: float = 2.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self.attempt = 0

    def reset(self) -> None:
        self.attempt = 0

    def next(self) -> float:
        cap = min(self.maximum, self.initial * (2**self.attempt))
        self.attempt += 1
        return random.uniform(cap / 2, cap)


class RouteWatcher:
    """Keeps ``router`` on the control plane's newest table."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        router: Router,
        sidecar_id: str,
        metadata: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.stub = routing_pb2_grpc.RoutingServiceStub(channel)
        self.metadata = metadata  # credentials for the control plane (a bearer token)
        self.router = router
        self.sidecar_id = sidecar_id
        self.connected = False
        self.last_update = 0.0
        self.reconnects = 0
        self._backoff = Backoff()

    async def run(self) -> None:
        while True:
            try:
                stream = self.stub.WatchRoutes(
                    routing_pb2.WatchRoutesRequest(
                        sidecar_id=self.sidecar_id, known_version=self.router.version
                    ),
                    metadata=self.metadata,
                )
                async for table in stream:
                    if not self.connected:
                        log.info("route watch connected", version=table.version)
                    self.connected = True
                    self._backoff.reset()
                    self.last_update = time.time()
                    if table.version != self.router.version or self.router.table is None:
                        self.router.apply(table)
                code = "OK"
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as exc:
                code = exc.code().name
            except Exception:  # noqa: BLE001 - nothing may end the watch for good
                log.exception("route watch failed; serving on the last table")
                code = "ERROR"
            if self.connected:
                log.warning(
                    "route watch lost; serving on the last table",
                    code=code,
                    version=self.router.version,
                )
            self.connected = False
            self.reconnects += 1
            await asyncio.sleep(self._backoff.next())


class MetricsReporter:
    """Cuts a window every ``interval`` seconds and streams the batches until acked."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        aggregator: Aggregator,
        sidecar_id: str,
        *,
        interval: float = 1.0,
        max_backlog: int = 3600,
        metadata: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.stub = routing_pb2_grpc.RoutingServiceStub(channel)
        self.metadata = metadata
        self.aggregator = aggregator
        self.sidecar_id = sidecar_id
        self.interval = interval
        self.max_backlog = max_backlog
        self.pending: OrderedDict[int, routing_pb2.MetricsBatch] = OrderedDict()
        self.sequence = 0
        # Secret per process: the control plane dedups on (sidecar_id, session, sequence),
        # so nobody who reads our public id can pre-empt our sequence numbers.
        self.session = secrets.token_urlsafe(24)
        self.acked = 0
        self.dropped_batches = 0
        self.rejected = 0
        self.connected = False
        self._new = asyncio.Event()
        self._backoff = Backoff()

    def flush(self) -> routing_pb2.MetricsBatch | None:
        """Close the current window; queue it as a batch if it holds anything."""
        windows, shadows = self.aggregator.cut()
        if not windows and not shadows:
            return None
        self.sequence += 1
        batch = routing_pb2.MetricsBatch(
            sidecar_id=self.sidecar_id,
            sequence=self.sequence,
            session=self.session,
            created_us=int(time.time() * 1_000_000),
            windows=windows,
            shadows=shadows,
        )
        self.pending[self.sequence] = batch
        while len(self.pending) > self.max_backlog:
            seq, _ = self.pending.popitem(last=False)
            self.dropped_batches += 1
            log.warning("metric backlog full; oldest batch dropped", sequence=seq)
        self._new.set()
        return batch

    async def run_flusher(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.flush()

    async def run(self) -> None:
        while True:
            try:
                await self._stream_once()
            except asyncio.CancelledError:
                raise
            except (grpc.aio.AioRpcError, StreamEnded, asyncio.InvalidStateError) as exc:
                # InvalidStateError: a write raced the server's end of the call ("RPC
                # already finished"); like any lost stream, the backlog is sent again.
                if self.connected:
                    log.warning("metrics stream lost", error=str(exc), backlog=len(self.pending))
            except Exception:  # noqa: BLE001 - nothing may end metric reporting for good
                log.exception("metrics stream failed", backlog=len(self.pending))
            self.connected = False
            await asyncio.sleep(self._backoff.next())

    async def _stream_once(self) -> None:
        call = self.stub.ReportMetrics(metadata=self.metadata)
        sent = 0  # highest sequence written on this stream

        async def read_acks() -> None:
            async for ack in call:
                if not self.connected:
                    self.connected = True
                self._backoff.reset()
                if self.pending.pop(ack.sequence, None) is not None:
                    self.acked += 1
                    if ack.error:
                        self.rejected += 1
                        log.error("metric batch rejected", sequence=ack.sequence, error=ack.error)
                self._new.set()

        reader = asyncio.create_task(read_acks())
        try:
            await call.wait_for_connection()
            self.connected = True
            while not reader.done():
                for seq in list(self.pending):
                    if seq > sent:
                        await call.write(self.pending[seq])
                        sent = seq
                self._new.clear()
                waiter = asyncio.ensure_future(self._new.wait())
                await asyncio.wait({waiter, reader}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
            reader.result()  # raises the stream's error, if any
            raise StreamEnded("metrics stream ended by the control plane")
        finally:
            reader.cancel()
            call.cancel()

    async def drain(self, timeout: float) -> bool:
        """Flush the last window and wait until every batch is acknowledged (SIGTERM)."""
        self.flush()
        deadline = time.monotonic() + timeout
        while self.pending and time.monotonic() < deadline:
            self._new.clear()
            try:
                await asyncio.wait_for(self._new.wait(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                break
        return not self.pending
