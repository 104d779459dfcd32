"""A real control plane whose routes come from a JSON file (sidecar tests, benchmarks).

    python tests/peers/static_control_plane.py --data-dir DIR --listen 127.0.0.1:0 \\
        --routes routes.json

The file holds a list of ModelRoute dicts (field names of
:class:`neural.mlops.server.routing.model.ModelRoute`); it is re-read on every compile,
so rewriting it changes the routing table (the server's poller picks it up). Prints
``listening on HOST:PORT`` once serving; SIGTERM stops it gracefully.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from pathlib import Path
from typing import Any

from neural.mlops.server.app import ControlPlane
from neural.mlops.server.config import ServerConfig
from neural.mlops.server.routing.model import ModelRoute, RouteVariant, ShadowTarget


def route_from_dict(d: dict[str, Any]) -> ModelRoute:
    return ModelRoute(
        model_name=d["model_name"],
        route_id=d["route_id"],
        kind=d.get("kind", "experiment"),
        strategy=d.get("strategy", "hash"),
        variants=tuple(RouteVariant(**v) for v in d.get("variants", ())),
        shadows=tuple(ShadowTarget(**s) for s in d.get("shadows", ())),
        forced_variants=tuple(tuple(x) for x in d.get("forced_variants", ())),
        layer_id=d.get("layer_id", ""),
        range_start=d.get("range_start", 0.0),
        range_end=d.get("range_end", 1.0),
        targeting=tuple(d.get("targeting", ())),
        header_routes=tuple(tuple(x) for x in d.get("header_routes", ())),
    )


class FileRoutes:
    def __init__(self, path: Path) -> None:
        self.path = path

    async def active_routes(self, conn: Any) -> list[ModelRoute]:
        if not self.path.exists():
            return []
        return [route_from_dict(d) for d in json.loads(self.path.read_text() or "[]")]


async def main(args: argparse.Namespace) -> int:
    plane = ControlPlane(
        ServerConfig(data_dir=Path(args.data_dir), listen=args.listen, grace_seconds=2.0,
                     database_url=args.database_url, http_listen="off")  # no web console
    )
    await plane.start()
    assert plane.services is not None
    # The file is written by another process, so only the poller sees changes: poll often.
    plane.services.routing.poll_seconds = 0.1
    plane.services.routing.add_provider(FileRoutes(Path(args.routes)))
    print(f"listening on {plane.address}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await plane.stop()
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", required=True)
    p.add_argument("--listen", default="127.0.0.1:0")
    p.add_argument("--routes", required=True)
    p.add_argument("--database-url", default="")
    raise SystemExit(asyncio.run(main(p.parse_args())))
