"""RoutingService over gRPC: converts messages and calls the domain, nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from neural.mlops.server.errors import InvalidArgument
from neural.mlops.server.routing import convert as c
from neural.mlops.server.routing import series
from neural.mlops.server.routing.series_convert import series_to_pb, sidecar_to_pb
from neural.mlops.server.routing.sidecars import SidecarRegistry
from neural.mlops.server.services import Services
from neural.mlops.v1 import routing_pb2 as pb
from neural.mlops.v1 import routing_pb2_grpc

Ctx = grpc.aio.ServicerContext[Any, Any]


class RoutingServicer(routing_pb2_grpc.RoutingServiceServicer):
    def __init__(self, services: Services) -> None:
        self.routing = services.routing
        self.db = services.db
        self.sidecars = SidecarRegistry(services.db, services.clock)

    async def WatchRoutes(
        self, request: pb.WatchRoutesRequest, context: Ctx
    ) -> AsyncIterator[pb.RoutingTable]:  # noqa: N802
        handle = self.sidecars.connected(request.sidecar_id, context.peer() or "")
        try:
            async for table in self.routing.watch():
                self.sidecars.sent(handle, table.version)
                yield c.table_to_pb(table)
        finally:
            self.sidecars.gone(handle)

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

    async def ListSidecars(
        self, request: pb.ListSidecarsRequest, context: Ctx
    ) -> pb.ListSidecarsResponse:  # noqa: N802
        items, token = await self.sidecars.list(request.page_size, request.page_token)
        return pb.ListSidecarsResponse(sidecars=[sidecar_to_pb(i) for i in items],
                                       next_page_token=token)

    async def GetTrafficSeries(
        self, request: pb.GetTrafficSeriesRequest, context: Ctx
    ) -> pb.TrafficSeries:  # noqa: N802
        span = series.span(since_us=request.since_us, until_us=request.until_us,
                           size=request.page_size, token=request.page_token,
                           step_us=request.step_us)
        if request.shadow:
            points, token = await series.shadow_series(self.db, request.route_id, span)
        else:
            seq = await series.sequential_settings(self.db, request.route_id)
            points, token = await series.route_series(self.db, request.route_id, span,
                                                      request.baseline, seq)
        return series_to_pb(request.route_id, points, token)
