"""The sidecar's metric reporter outlives every way a stream can end.

A real gRPC server on loopback ends the first streams with UNAVAILABLE right after their
first batch, while the reporter is still writing a long backlog: the next write then
meets a finished call (asyncio.InvalidStateError, not an RpcError). Before the fix that
error ended the reporter's task for good and the backlog was never delivered (seen in
tests/test_replicas_chaos.py after a database restart). The reporter must reconnect and
have every batch acknowledged once the server answers again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc

from neural.mlops.sidecar.control import Backoff, MetricsReporter
from neural.mlops.sidecar.metrics import Aggregator
from neural.mlops.v1 import routing_pb2, routing_pb2_grpc

BATCHES = 2000
FAILING_STREAMS = 40


class FlakyRouting(routing_pb2_grpc.RoutingServiceServicer):
    def __init__(self) -> None:
        self.streams = 0
        self.acked: set[int] = set()

    async def ReportMetrics(  # noqa: N802
        self, request_iterator: AsyncIterator[routing_pb2.MetricsBatch], context: Any
    ) -> AsyncIterator[routing_pb2.MetricsAck]:
        self.streams += 1
        failing = self.streams <= FAILING_STREAMS
        async for batch in request_iterator:
            if failing:  # the store went away: the call ends while the client writes
                await context.abort(grpc.StatusCode.UNAVAILABLE, "the store is unavailable")
            self.acked.add(batch.sequence)
            yield routing_pb2.MetricsAck(sidecar_id=batch.sidecar_id, sequence=batch.sequence)


async def _deliver() -> tuple[FlakyRouting, MetricsReporter, bool]:
    server = grpc.aio.server()
    servicer = FlakyRouting()
    routing_pb2_grpc.add_RoutingServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    reporter = MetricsReporter(channel, Aggregator(), "sc-1", interval=3600)
    reporter._backoff = Backoff(initial=0.001, maximum=0.01)  # many reconnects, quickly
    for seq in range(1, BATCHES + 1):  # a backlog built while the control plane was away
        reporter.sequence = seq
        reporter.pending[seq] = routing_pb2.MetricsBatch(
            sidecar_id="sc-1", sequence=seq, session="s", created_us=1, windows=[
                routing_pb2.VariantWindow(model_name="m", variant="a", count=1)])
    task = asyncio.get_running_loop().create_task(reporter.run())
    try:
        for _ in range(600):  # up to 60 s on a loaded machine
            if not reporter.pending or task.done():
                break
            await asyncio.sleep(0.1)
        alive = not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await channel.close()
        await server.stop(None)
    return servicer, reporter, alive


def test_the_reporter_survives_streams_ended_under_its_writes() -> None:
    servicer, reporter, alive = asyncio.run(_deliver())
    assert alive, "the reporter's task ended"
    assert servicer.streams > FAILING_STREAMS
    assert not reporter.pending
    assert servicer.acked == set(range(1, BATCHES + 1))
