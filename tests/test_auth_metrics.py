"""Refused calls are counted in Prometheus metrics (`serve --metrics-listen`), every one of
them, while their audit events are rate-limited."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import grpc
from support.processes import start_server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_every_refused_authentication_is_counted(tmp_path: Path) -> None:
    port = _free_port()
    srv = start_server(tmp_path / "d", "--auth", "token", "--metrics-listen", f"127.0.0.1:{port}")
    try:
        with grpc.insecure_channel(srv.address) as ch:
            list_models = ch.unary_unary("/neural.mlops.v1.RegistryService/ListModels",
                                         request_serializer=None, response_deserializer=None)
            for _ in range(7):
                try:
                    list_models(b"", metadata=[("authorization", "Bearer nmo_0_nope")], timeout=10)
                except grpc.RpcError as err:
                    assert err.code() is grpc.StatusCode.UNAUTHENTICATED
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
        lines = [ln for ln in body.decode().splitlines()
                 if ln.startswith("neural_mlops_refused_calls_total{")
                 and 'kind="authentication"' in ln]
        assert sum(float(ln.rsplit(" ", 1)[1]) for ln in lines) == 7.0
    finally:
        srv.stop()
