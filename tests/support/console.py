"""A console client for tests: a real HTTP client (requests) holding the session cookie
and CSRF token as a browser would, against a server started with ``--http-listen``."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from support.databases import store_args
from support.processes import ServerProcess, start_server

CONSOLE_LINE = re.compile(r"console at (https?://\S+)")


def start_console_server(data_dir: Path, *extra: str) -> tuple[ServerProcess, str]:
    """A control plane with its console on an ephemeral port; (process, console URL)."""
    server = start_server(data_dir, "--http-listen", "127.0.0.1:0", *extra)
    return server, console_url(server)


def console_url(server: ServerProcess) -> str:
    """The console URL a started server printed (without the trailing slash)."""
    assert server.proc.stdout is not None
    # printed right after the gRPC address: already in the pipe's buffer, so read it
    # (select() on the descriptor would not see buffered lines)
    for line in server.proc.stdout:
        if m := CONSOLE_LINE.search(line):
            return m.group(1).rstrip("/")
    server.stop()
    raise RuntimeError("the server printed no console URL")


def bootstrap_admin(data_dir: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "neural.mlops", "auth", "bootstrap", *store_args(data_dir),
         "--json"], capture_output=True, text=True, timeout=120, check=True)
    return str(json.loads(out.stdout)["token"])


def cookie_attributes(set_cookie: str) -> dict[str, str]:
    """``name=value; HttpOnly; Path=/`` -> {"nmo_session": value, "httponly": "", ...}."""
    out: dict[str, str] = {}
    for i, part in enumerate(p.strip() for p in set_cookie.split(";")):
        key, _, value = part.partition("=")
        out[key if i == 0 else key.lower()] = value
    return out


@dataclass
class Console:
    url: str
    cookie: str = ""
    csrf: str = ""
    http: requests.Session = field(default_factory=requests.Session)

    @property
    def origin(self) -> str:
        return self.url

    def headers(self, csrf: bool = True, **extra: str) -> dict[str, str]:
        out = {"Origin": self.origin, **extra}
        if self.cookie:
            out["Cookie"] = f"nmo_session={self.cookie}"
        if csrf and self.csrf:
            out["X-CSRF-Token"] = self.csrf
        return out

    def login(self, **body: str) -> requests.Response:
        r = self.http.post(f"{self.url}/login", json=body, headers=self.headers(csrf=False))
        if r.status_code == 200:
            self.cookie = cookie_attributes(r.headers["Set-Cookie"])["nmo_session"]
            self.csrf = r.json()["csrf_token"]
        return r

    def session(self) -> dict[str, Any]:
        r = self.http.get(f"{self.url}/api/session", headers=self.headers(csrf=False))
        r.raise_for_status()
        return dict(r.json())

    def post(self, path: str, body: Any = None, **headers: str) -> requests.Response:
        merged = {**self.headers(), **headers}
        return self.http.post(f"{self.url}{path}", json=body if body is not None else {},
                              headers={k: v for k, v in merged.items() if v is not None})

    def rpc(self, service: str, method: str, body: dict[str, Any] | None = None,
            **headers: str) -> requests.Response:
        return self.post(f"/api/v1/neural.mlops.v1.{service}/{method}", body or {}, **headers)

    def ok(self, service: str, method: str, body: dict[str, Any] | None = None) -> Any:
        r = self.rpc(service, method, body)
        assert r.status_code == 200, r.text
        return r.json()

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.get(f"{self.url}{path}", headers=self.headers(csrf=False), **kwargs)
