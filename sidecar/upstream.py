"""One reused gRPC channel per upstream model server, with raw-bytes callables cached.

Serializers are None everywhere: requests and responses pass through as ``bytes``.
"""

from __future__ import annotations

from typing import Any

import grpc

from neural.mlops.v1.limits import MAX_MESSAGE_BYTES as MAX_MESSAGE

CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.max_send_message_length", MAX_MESSAGE),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.enable_retries", 0),
]


class Upstreams:
    def __init__(self, default: str) -> None:
        self.default = default
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._unary: dict[tuple[str, str], Any] = {}
        self._stream: dict[tuple[str, str], Any] = {}

    def channel(self, address: str = "") -> grpc.aio.Channel:
        address = address or self.default
        ch = self._channels.get(address)
        if ch is None:
            ch = self._channels[address] = grpc.aio.insecure_channel(
                address, options=CHANNEL_OPTIONS
            )
        return ch

    def unary(self, address: str, method: str) -> Any:
        key = (address, method)
        mc = self._unary.get(key)
        if mc is None:
            mc = self._unary[key] = self.channel(address).unary_unary(method)
        return mc

    def stream(self, address: str, method: str) -> Any:
        key = (address, method)
        mc = self._stream.get(key)
        if mc is None:
            mc = self._stream[key] = self.channel(address).stream_stream(method)
        return mc

    async def close(self) -> None:
        for ch in self._channels.values():
            await ch.close()
        self._channels.clear()
        self._unary.clear()
        self._stream.clear()


# --- OIP over HTTP (REST): one pooled aiohttp session for every REST upstream ------------

_HTTP_SCHEMES = ("http", "https")


def parse_http_upstream(url: str, what: str = "upstream_http") -> str:
    """``http(s)://HOST[:PORT][/PREFIX]`` without a trailing slash, or ValueError naming
    ``what`` and the wrong part (no user info, query or fragment: a base URL to append
    OIP paths to)."""
    from yarl import URL

    try:
        u = URL(url)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{what}: {url!r} is not a URL ({exc})") from None
    if u.scheme not in _HTTP_SCHEMES:
        raise ValueError(f"{what}: {url!r} must start with http:// or https://")
    if not u.host:
        raise ValueError(f"{what}: {url!r} has no host")
    if u.user is not None or u.password is not None:
        raise ValueError(f"{what}: {url!r} must not carry user info")
    if u.query_string or u.fragment:
        raise ValueError(f"{what}: {url!r} must not have a query or fragment")
    return str(u).rstrip("/")


def parse_http_map(text: str) -> dict[str, str]:
    """``HOST:PORT=URL[,HOST:PORT=URL...]``: the REST form of model servers that routing
    tables name by their gRPC ``HOST:PORT``. Keys in canonical form (allow-list module)."""
    from neural.mlops.v1.upstream import parse_upstream

    out: dict[str, str] = {}
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        grpc_address, sep, url = item.partition("=")
        if not sep:
            raise ValueError(f"upstream_http_for: {item!r} is not HOST:PORT=URL")
        try:
            key = parse_upstream(grpc_address.strip())
        except ValueError as exc:
            raise ValueError(f"upstream_http_for: {grpc_address.strip()!r}: {exc}") from None
        out[key] = parse_http_upstream(url.strip(), "upstream_http_for")
    return out


class HttpUpstreams:
    """Where the REST front end sends a request, and the one connection pool it uses.

    A routing table names upstreams by their gRPC ``HOST:PORT``; ``""`` and the sidecar's
    own ``--upstream`` are ``--upstream-http``, and others are the URLs that
    ``--upstream-http-for`` gives them. :meth:`base` is None for an upstream without a
    REST form (the caller gets 503: another server would be the wrong model).
    """

    def __init__(
        self,
        default: str,
        grpc_default: str = "",
        mapping: dict[str, str] | None = None,
        *,
        read_timeout: float = 60.0,
        pool_size: int = 512,
    ) -> None:
        from neural.mlops.v1.upstream import parse_upstream

        self.default = parse_http_upstream(default)
        self._grpc_default = grpc_default
        self._mapping = dict(mapping or {})
        self._canonical = parse_upstream
        self.read_timeout = read_timeout
        self.pool_size = pool_size
        self._session: Any = None

    def base(self, upstream: str) -> str | None:
        if not upstream or upstream == self._grpc_default:
            return self.default
        url = self._mapping.get(upstream)
        if url is None:
            try:
                url = self._mapping.get(self._canonical(upstream))
            except ValueError:
                return None
        return url

    @property
    def session(self) -> Any:
        """The aiohttp ClientSession (created on first use, inside the running loop):
        keep-alive connections to every upstream, bodies passed through undecoded."""
        if self._session is None:
            import aiohttp

            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.pool_size, limit_per_host=0),
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=10.0, sock_read=self.read_timeout
                ),
                auto_decompress=False,
                trust_env=False,
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
