"""The demo model's REST form: the Open Inference Protocol over HTTP (aiohttp), the same
model as its gRPC form (:meth:`~neural.mlops.sidecar.demo_model.DemoModel.compute`).

Serves ``POST /v2/models/{name}[/versions/{v}]/infer`` (JSON tensors in and out; the
answer echoes the version asked for in ``model_version``), model metadata and readiness,
``/v2`` and ``/v2/health/{live,ready}``. Errors are OIP REST errors (``{"error": ...}``,
400 / 404 / 500). With ``emit_metric`` the answer carries
``x-neural-metric-output_mean``; with ``headers``, those response headers.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from neural.mlops.sidecar.demo_model import DemoModel
from neural.mlops.sidecar.oip import SHADOW_PARAMETER
from neural.mlops.sidecar.rest_oip import error_body, json_outputs, split_body, tensors
from neural.mlops.v1.limits import MAX_MESSAGE_BYTES


def _json(payload: Any, status: int = 200, headers: Any = None) -> web.Response:
    return web.json_response(payload, status=status, headers=headers)


def _error(status: int, message: str) -> web.Response:
    return web.Response(status=status, body=error_body(message), content_type="application/json")


class DemoRest:
    """The handlers; :attr:`app` is the aiohttp application."""

    def __init__(self, model: DemoModel) -> None:
        self.model = model
        self.app = web.Application(client_max_size=MAX_MESSAGE_BYTES)
        r = self.app.router
        r.add_get("/v2", self.server_metadata)
        r.add_get("/v2/health/live", self.health)
        r.add_get("/v2/health/ready", self.health)
        for base in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
            r.add_get(base, self.model_metadata)
            r.add_get(base + "/ready", self.model_ready)
            r.add_post(base + "/infer", self.infer)

    async def server_metadata(self, request: web.Request) -> web.Response:
        body = {"name": "neural-mlops-demo", "version": "1", "extensions": []}
        return _json(body, headers=dict(self.model.config.headers) or None)

    async def health(self, request: web.Request) -> web.Response:
        return _json({"live": True} if request.path.endswith("live") else {"ready": True})

    def _unknown(self, request: web.Request) -> web.Response | None:
        name = request.match_info["name"]
        return None if self.model._known(name) else _error(404, f"unknown model {name!r}")

    async def model_ready(self, request: web.Request) -> web.Response:
        return self._unknown(request) or _json({"name": request.match_info["name"],
                                                "ready": True})

    async def model_metadata(self, request: web.Request) -> web.Response:
        missing = self._unknown(request)
        if missing is not None:
            return missing
        version = request.match_info.get("version")
        return _json({
            "name": request.match_info["name"],
            "versions": [version] if version else [],
            "platform": "numpy",
            "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, -1]}],
            "outputs": [{"name": "score", "datatype": "FP32", "shape": [-1]}],
        })

    async def infer(self, request: web.Request) -> web.Response:
        m = self.model
        m.calls += 1
        name = request.match_info["name"]
        try:
            doc, binary = split_body(
                await request.read(), request.headers.get("inference-header-content-length")
            )
            inputs = tensors(doc, binary, "inputs")
        except (ValueError, TypeError) as exc:
            return _error(400, f"inputs: {exc}")
        if m.config.record_metadata:
            self._record(request, name, doc)
        if not m._known(name):
            return _error(404, f"unknown model {name!r}")
        if m.config.latency_ms > 0:
            await asyncio.sleep(m.config.latency_ms / 1000.0)
        if m.config.error_rate > 0 and m._rng.random() < m.config.error_rate:
            return _error(500, "injected error (--error-rate)")
        outputs, mean = m.compute(inputs)
        headers = dict(m.config.headers)
        if mean is not None and m.config.emit_metric:
            headers["x-neural-metric-output_mean"] = repr(mean)
        answer = {"model_name": name, "model_version": request.match_info.get("version", ""),
                  "outputs": json_outputs(outputs)}
        if "id" in doc:
            answer["id"] = doc["id"]
        return _json(answer, headers=headers or None)

    def _record(self, request: web.Request, name: str, doc: dict[str, Any]) -> None:
        params = doc.get("parameters") or {}
        line = {
            "model_name": name,
            "model_version": request.match_info.get("version", ""),
            "shadow": bool(isinstance(params, dict) and params.get(SHADOW_PARAMETER) is True),
            "metadata": [[k.lower(), v] for k, v in request.headers.items()],
        }
        with open(self.model.config.record_metadata, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")


class DemoRestServer:
    """The REST form listening on ``listen`` (``HOST:PORT``; port 0 = any)."""

    def __init__(self, model: DemoModel, listen: str) -> None:
        self.rest = DemoRest(model)
        self.listen = listen
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        host, port = self.listen.rsplit(":", 1)
        self.runner = web.AppRunner(self.rest.app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host.strip("[]"), int(port), reuse_port=False)
        await site.start()
        self.port = self.runner.addresses[0][1]

    @property
    def url(self) -> str:
        return f"http://{self.listen.rsplit(':', 1)[0]}:{self.port}"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
