"""Web console page loads at scale: the API calls each page makes, through the console.

One command::

    python benchmarks/console.py             # 10,000 model versions, 10^6 audit events
    python benchmarks/console.py --smoke     # 300 versions, 5,000 events (the test runs this)

The store is built once and cached under ``.bench/console-<versions>-<events>/`` (the
smoke store in a temporary folder): versions through the registry domain in process
(``register_model`` with 3 metrics, an artifact URI; 20 models), audit events through the
audit domain's batch path (10,000 per transaction, a manual clock moving 60 s per batch,
35 event types, 1,000 users), one running A/B test with a day of one-minute traffic
windows written through the traffic store. Then ``neural-mlops serve --http-listen``
runs on that store and one client loads each page ``--repeats`` times, calling what the
page calls, in order:

========== ===========================================================================
page       API calls (console ``POST /api/v1/...``)
========== ===========================================================================
overview   ListModels (100), ListTests RUNNING, ListDeployments, ListSidecars,
           ListPendingApprovals
model      GetLatestVersions, ListVersions (first page of 100, newest first), GetHistory
           (100), ListPendingApprovals for the model with the most versions
versions   SearchModelVersions ``accuracy >= 0.9`` (100): versions sorted by metric filter
sorted     ListVersions of the model by ``metrics.accuracy desc`` (50: a click on the model
           page's metric header), SearchModelVersions ``accuracy >= 0.9`` by ``metrics.auc
           desc`` (100)
audit      QueryEvents by event type + time range (100), by user (100), ListCheckpoints
experiment GetTest, AnalyzeTest, GetTrafficSeries: the page's one-window probe, then a
           day in 5-minute steps (288 points: the step the page picks for a day)
========== ===========================================================================

Each row prints the page's first load (cold: the server has computed nothing for it
yet; the console re-reads pages on every change notice, so later loads are the
common case), then over the repeats the median and p95 of the page's total time, its
spread (min-max), and
the ratio of the median to a baseline measured in the same run: the same calls made
directly over gRPC (the console's own overhead: HTTP, JSON both ways, the session and
CSRF checks). Target (issue #17): every page < 300 ms at 10^4 versions and 10^6 events.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests"))

MODELS = 20
TARGET_MS = 300.0
MINUTE_US = 60_000_000


async def _versions(data: Path, n: int) -> None:
    from neural.mlops.server.registry.registration import RegisterSpec
    from neural.mlops.server.services import Services

    services = await Services.open(data)
    rng = random.Random(11)
    try:
        for i in range(n):
            spec = RegisterSpec(
                name=f"model-{i % MODELS:02d}", version=f"v{i // MODELS + 1}",
                framework="sklearn", created_by=f"user{rng.randrange(50)}@x.com",
                metrics={"accuracy": rng.random(), "f1": rng.random(), "auc": rng.random()},
                artifact_uri=f"s3://bench/{i}.pkl")
            await services.registry.register_model(spec)
    finally:
        await services.close()


async def _audit(data: Path, n: int) -> None:
    from neural.mlops.server.audit.events import EventSeverity, EventType
    from neural.mlops.server.audit.service import EventInput
    from neural.mlops.server.clock import ManualClock
    from neural.mlops.server.services import Services

    clock = ManualClock()
    services = await Services.open(data, clock=clock)
    rng = random.Random(7)
    types, sevs = list(EventType), list(EventSeverity)
    try:
        done = 0
        while done < n:
            k = min(10_000, n - done)
            await services.audit.log_events([
                EventInput(types[rng.randrange(len(types))], "model",
                           f"model-{rng.randrange(MODELS):02d}:v1", "act", {"n": done + i},
                           sevs[rng.randrange(len(sevs))], f"user{rng.randrange(1000)}@x.com")
                for i in range(k)])
            done += k
            clock.advance(60)
        await services.audit.checkpoint("periodic")
    finally:
        await services.close()


async def _experiment(data: Path) -> str:
    from neural.mlops.ab_testing import ABTestManager
    from neural.mlops.server.services import Services
    from neural.mlops.server.traffic import store
    from neural.mlops.v1.traffic import VariantStats

    manager = ABTestManager(str(data))
    test = manager.create_test(name="bench", control_variant="model-00:v1",
                               treatment_variant="model-00:v2")
    manager.start_test(test.test_id)
    manager.close()
    services = await Services.open(data)
    start = (int(time.time()) * 1_000_000 // MINUTE_US - 1440) * MINUTE_US
    rng = random.Random(3)
    try:
        async with services.db.change(audited=False) as ch:
            for k in range(1440):
                for variant, rate in (("control", 0.90), ("treatment", 0.91)):
                    stats = VariantStats()
                    for _ in range(40):
                        ok = rng.random() < rate
                        stats.observe(success=ok, error=not ok, latency=rng.expovariate(50))
                    await store.apply(ch.conn, test.test_id, variant,
                                      start + k * MINUTE_US, stats)
    finally:
        await services.close()
    return test.test_id


def build(data: Path, versions: int, events: int) -> str:
    """The store (cached when ``data`` holds a finished one); returns the test id."""
    from neural.mlops.server.logging import configure_logging

    configure_logging("warning")  # one info line per registered version otherwise
    marker = data / "bench.json"
    if marker.is_file():
        return str(json.loads(marker.read_text())["test_id"])
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    t = time.perf_counter()
    asyncio.run(_versions(data, versions))
    asyncio.run(_audit(data, events))
    test_id = asyncio.run(_experiment(data))
    marker.write_text(json.dumps({"test_id": test_id, "versions": versions, "events": events,
                                  "build_seconds": round(time.perf_counter() - t, 1)}))
    return test_id


def pages(test_id: str, events_first_us: int) -> dict[str, list[tuple[str, str, dict[str, Any]]]]:
    day = {"start_time": "2020-01-01T00:00:00Z", "end_time": "2100-01-01T00:00:00Z"}
    return {
        "overview": [
            ("RegistryService", "ListModels", {"page_size": 100}),
            ("ExperimentService", "ListTests", {"status": "TEST_STATUS_RUNNING"}),
            ("DeploymentService", "ListDeployments", {}),
            ("RoutingService", "ListSidecars", {}),
            ("RegistryService", "ListPendingApprovals", {}),
        ],
        "model": [
            ("RegistryService", "GetLatestVersions", {"name": "model-00"}),
            ("RegistryService", "ListVersions", {"name": "model-00", "page_size": 100}),
            ("RegistryService", "GetHistory", {"name": "model-00", "page_size": 100}),
            ("RegistryService", "ListPendingApprovals", {"name": "model-00"}),
        ],
        "versions": [
            ("RegistryService", "SearchModelVersions",
             {"filter": "accuracy >= 0.9", "page_size": 100}),
        ],
        "sorted": [
            ("RegistryService", "ListVersions", {"name": "model-00", "page_size": 50,
                                                 "order_by": "metrics.accuracy desc"}),
            ("RegistryService", "SearchModelVersions",
             {"filter": "accuracy >= 0.9", "page_size": 100, "order_by": "metrics.auc desc"}),
        ],
        "audit": [
            ("AuditService", "QueryEvents",
             {"event_types": ["EVENT_TYPE_MODEL_UPDATED"], **day, "page_size": 100}),
            ("AuditService", "QueryEvents", {"user": "user7@x.com", "page_size": 100}),
            ("AuditService", "ListCheckpoints", {}),
        ],
        "experiment": [
            ("ExperimentService", "GetTest", {"test_id": test_id}),
            ("ExperimentService", "AnalyzeTest", {"test_id": test_id}),
            ("RoutingService", "GetTrafficSeries", {"route_id": test_id, "page_size": 1}),
            ("RoutingService", "GetTrafficSeries", {"route_id": test_id, "step_us": 300_000_000,
                                                    "page_size": 301}),
        ],
    }


def _console_caller(url: str) -> Callable[[str, str, dict[str, Any]], None]:
    import requests

    http = requests.Session()
    origin = {"Origin": url}
    r = http.post(f"{url}/login", json={"name": "bench@x.com"}, headers=origin)
    r.raise_for_status()
    cookie = r.headers["Set-Cookie"].split(";")[0]
    headers = {**origin, "Cookie": cookie, "X-CSRF-Token": r.json()["csrf_token"]}

    def call(service: str, method: str, body: dict[str, Any]) -> None:
        answer = http.post(f"{url}/api/v1/neural.mlops.v1.{service}/{method}", json=body,
                           headers=headers)
        if answer.status_code != 200:
            raise RuntimeError(f"{service}/{method}: {answer.status_code} {answer.text[:300]}")

    return call


def _grpc_caller(address: str) -> Callable[[str, str, dict[str, Any]], None]:
    import grpc
    from google.protobuf import json_format

    import neural.mlops.server.app  # noqa: F401 - registers every service's descriptors
    from neural.mlops.server.console.gateway import MethodIndex

    channel = grpc.insecure_channel(address)
    index = MethodIndex([f"neural.mlops.v1.{s}" for s in (
        "RegistryService", "ExperimentService", "DeploymentService", "RoutingService",
        "AuditService")])
    metadata = (("x-neural-user", "bench@x.com"),)

    def call(service: str, method: str, body: dict[str, Any]) -> None:
        m = index.get(f"neural.mlops.v1.{service}", method)
        assert m is not None
        request = json_format.ParseDict(body, m.request())
        kw = {"request_serializer": m.request.SerializeToString,
              "response_deserializer": m.response.FromString}
        if m.server_streaming:
            for _ in channel.unary_stream(m.path, **kw)(request, metadata=metadata):
                pass
        else:
            channel.unary_unary(m.path, **kw)(request, metadata=metadata)

    return call


def measure(call: Callable[[str, str, dict[str, Any]], None],
            calls: list[tuple[str, str, dict[str, Any]]], repeats: int) -> list[float]:
    """The page's first load (cold: nothing remembered yet), then ``repeats`` loads."""
    t = time.perf_counter()
    for service, method, body in calls:
        call(service, method, body)
    out = [(time.perf_counter() - t) * 1000.0]
    for _ in range(repeats):
        t = time.perf_counter()
        for service, method, body in calls:
            call(service, method, body)
        out.append((time.perf_counter() - t) * 1000.0)
    return out


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def run(data: Path, versions: int, events: int, repeats: int) -> dict[str, dict[str, float]]:
    from support.console import start_console_server

    test_id = build(data, versions, events)
    from neural.mlops.server.storage.database import sqlite_url

    # the store built above is SQLite, whatever engine the test suite runs on
    server, url = start_console_server(data, "--log-level", "warning",
                                       "--database-url", sqlite_url(data))
    results: dict[str, dict[str, float]] = {}
    try:
        console, direct = _console_caller(url), _grpc_caller(server.address)
        for page, calls in pages(test_id, 0).items():
            first, *via = measure(console, calls, repeats)
            _first, *base = measure(direct, calls, repeats)
            results[page] = {"first_ms": first,
                             "median_ms": statistics.median(via), "p95_ms": p95(via),
                             "min_ms": min(via), "max_ms": max(via),
                             "grpc_median_ms": statistics.median(base),
                             "ratio": statistics.median(via) / statistics.median(base)}
    finally:
        server.stop()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="small store, few repeats")
    parser.add_argument("--versions", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    if args.smoke:
        args.versions, args.events, args.repeats = 300, 5_000, 3
        tmp = Path(tempfile.mkdtemp(prefix="console-bench-"))
        data = tmp / "data"
    else:
        tmp = None
        data = ROOT / ".bench" / f"console-{args.versions}-{args.events}" / "data"
    try:
        results = run(data, args.versions, args.events, args.repeats)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(results))
        return 0
    print(f"console pages at {args.versions} versions, {args.events} audit events, "
          f"{args.repeats} loads each (target < {TARGET_MS:.0f} ms)")
    print(f"{'page':<11} {'first':>8} {'median':>8} {'p95':>8} {'min-max':>17} {'gRPC':>8} "
          f"{'ratio':>6}")
    for page, r in results.items():
        flag = "" if r["p95_ms"] < TARGET_MS else "  over target"
        print(f"{page:<11} {r['first_ms']:>6.1f}ms {r['median_ms']:>6.1f}ms {r['p95_ms']:>6.1f}ms "
              f"{r['min_ms']:>7.1f}-{r['max_ms']:<7.1f} {r['grpc_median_ms']:>6.1f}ms "
              f"{r['ratio']:>5.2f}x{flag}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
