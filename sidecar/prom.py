"""Prometheus metrics and a health page on the optional ``--metrics-port``.

The request path never touches prometheus_client: a custom collector reads the
aggregator's cumulative counters at scrape time. The tiny HTTP server runs on the
sidecar's own event loop (no thread, so no races with the counters it reads):
``GET /metrics`` (text exposition format) and ``GET /healthz`` (JSON; HTTP 200 while the
sidecar serves, with ``routing`` = ``live`` / ``stale`` / ``none``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector

from neural.mlops.sidecar.metrics import Aggregator
from neural.mlops.v1.traffic import LATENCY_BOUNDS

log = structlog.get_logger(__name__)

# Exported histogram buckets: every 10th contract bound (4 per decade, 1 us .. 100 s).
_EXPORT_EVERY = 10
_EXPORT_BOUNDS = [
    (i, LATENCY_BOUNDS[i])
    for i in range(0, len(LATENCY_BOUNDS), _EXPORT_EVERY)
    if LATENCY_BOUNDS[i] <= 100.0
]


RefusedTotal = Callable[[], dict[tuple[str, str, str, str], int]]


class SidecarCollector(Collector):
    def __init__(
        self,
        aggregator: Aggregator,
        state: Callable[[], dict[str, Any]],
        refused_total: RefusedTotal | None = None,
    ) -> None:
        self.aggregator = aggregator
        self.state = state
        self.refused_total = refused_total

    def collect(self) -> Iterator[Any]:
        requests = CounterMetricFamily(
            "neural_sidecar_requests",
            "ModelInfer calls by model, variant and gRPC status",
            labels=["model", "route", "variant", "code"],
        )
        latency = HistogramMetricFamily(
            "neural_sidecar_request_latency_seconds",
            "ModelInfer latency through the sidecar",
            labels=["model", "route", "variant"],
        )
        for slot in list(self.aggregator.slots.values()):
            labels = [slot.model_name, slot.route_id, slot.variant]
            ok = slot.total - slot.total_errors
            requests.add_metric([*labels, "OK"], ok)
            for code, n in list(slot.codes.items()):
                requests.add_metric([*labels, code], n)
            hist = slot.hist
            buckets = []
            acc = 0
            # Contract bucket i holds [B[i-1], B[i]); cumulative "le B[j]" = buckets <= j.
            last = 0
            for j, bound in _EXPORT_BOUNDS:
                for i in range(last, j + 1):
                    acc += hist.get(i, 0)
                last = j + 1
                buckets.append((repr(bound), acc))
            buckets.append(("+Inf", slot.total))
            latency.add_metric(labels, buckets, slot.lat_sum)
        yield requests
        yield latency

        shadow = CounterMetricFamily(
            "neural_sidecar_shadow",
            "Mirrored calls by outcome (agreed, disagreed, error, dropped)",
            labels=["model", "route", "shadow", "outcome"],
        )
        for ss in list(self.aggregator.shadow_slots.values()):
            labels = [ss.model_name, ss.route_id, ss.shadow_id]
            shadow.add_metric([*labels, "agreed"], ss.agreed)
            shadow.add_metric([*labels, "disagreed"], ss.disagreed)
            shadow.add_metric([*labels, "error"], ss.errors)
            shadow.add_metric([*labels, "dropped"], ss.dropped)
        yield shadow

        if self.refused_total is not None:
            refused = CounterMetricFamily(
                "neural_sidecar_upstream_refused",
                "Route variants and shadows not sent to their upstream because it is not in "
                "--allowed-upstream (once per routing table)",
                labels=["model", "route", "kind", "name"],
            )
            for (model, route, kind, name), n in list(self.refused_total().items()):
                refused.add_metric([model, route, kind, name], n)
            yield refused

        st = self.state()
        yield GaugeMetricFamily(
            "neural_sidecar_routing_table_version",
            "Applied routing-table version (0 = none)",
            value=st["table_version"],
        )
        yield GaugeMetricFamily(
            "neural_sidecar_control_plane_connected",
            "1 while the route watch is connected",
            value=1 if st["control_plane_connected"] else 0,
        )
        yield GaugeMetricFamily(
            "neural_sidecar_metric_batches_pending",
            "Metric batches not yet acknowledged",
            value=st["batches_pending"],
        )
        yield CounterMetricFamily(
            "neural_sidecar_metric_batches_dropped",
            "Metric batches dropped because the backlog was full",
            value=st["batches_dropped"],
        )
        yield CounterMetricFamily(
            "neural_sidecar_metric_batches_acked",
            "Metric batches acknowledged by the control plane",
            value=st["batches_acked"],
        )
        yield GaugeMetricFamily(
            "neural_sidecar_shadow_queue", "Mirror copies waiting", value=st["shadow_queue"]
        )
        yield GaugeMetricFamily(
            "neural_sidecar_upstreams_refused",
            "Variants and shadows of the current routing table refused for their upstream",
            value=len(st.get("upstreams_refused", ())),
        )
        yield GaugeMetricFamily(
            "neural_sidecar_in_flight", "Calls being proxied", value=st["in_flight"]
        )
        if "sticky_units" in st:
            yield GaugeMetricFamily(
                "neural_sidecar_sticky_units",
                "Bandit units remembered with their arm (--sticky-units bounds it)",
                value=st["sticky_units"],
            )
            yield CounterMetricFamily(
                "neural_sidecar_sticky_evictions",
                "Bandit units forgotten because the sticky table was full (they are hashed "
                "by the current weights if they come back)",
                value=st["sticky_evictions"],
            )


class MetricsServer:
    def __init__(
        self,
        host: str,
        port: int,
        aggregator: Aggregator,
        state: Callable[[], dict[str, Any]],
        refused_total: RefusedTotal | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.state = state
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(SidecarCollector(aggregator, state, refused_total))
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
            parts = line.decode("latin-1").split()
            path = parts[1].split("?", 1)[0] if len(parts) > 1 else "/"
            if path == "/metrics":
                body, ctype, status = (
                    generate_latest(self.registry),
                    "text/plain; version=0.0.4",
                    "200 OK",
                )
            elif path in ("/healthz", "/health", "/"):
                body, ctype, status = (
                    (json.dumps(self.state(), sort_keys=True) + "\n").encode(),
                    "application/json",
                    "200 OK",
                )
            else:
                body, ctype, status = b"not found\n", "text/plain", "404 Not Found"
            writer.write(
                f"HTTP/1.0 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                f"Connection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
