"""RoutingService over gRPC: converts messages and calls the domain, nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from neural.mlops.server.errors import InvalidArgument
from neural.mlops.server.routing import convert as c
from neural.mlops.server.services import Services
from neural.mlops.v1 import routing_pb2 as pb
from neural.mlops.v1 import routing_pb2_grpc

Ctx = grpc.aio.ServicerContext[Any, Any]


class RoutingServicer(routing_pb2_grpc.RoutingServiceServicer):
    def __init__(self, services: Services) -> None:
        self.routing = services.routing

    async def WatchRoutes(
        self, request: pb.WatchRoutesRequest, context: Ctx
    ) -> AsyncIterator[pb.RoutingTable]:  # noqa: N802
        async for table in self.routing.watch():
            yield c.table_to_pb(table)

    async def GetRoutingTable(
        self, request: pb.GetRoutingTableRequest, context: Ctx
    ) -> pb.RoutingTable:  # noqa: N802
        return c.table_to_pb(await self.routing.current())

    async def ReportMetrics(
        self, request_iterator: AsyncIterator[pb.MetricsBatch], context: Ctx
    ) -> AsyncIterator[pb.MetricsAck]:  # noqa: N802
        async for batch in request_iterator:
            try:
                duplicate = await self.routing.ingest(c.batch_from_pb(batch))
            except (InvalidArgument, ValueError) as exc:
                field = getattr(exc, "field", None)
                error = f"{field}: {exc}" if field else str(exc)
                yield pb.MetricsAck(
                    sidecar_id=batch.sidecar_id, sequence=batch.sequence, error=error
                )
                continue
            yield pb.MetricsAck(
                sidecar_id=batch.sidecar_id, sequence=batch.sequence, duplicate=duplicate
            )
