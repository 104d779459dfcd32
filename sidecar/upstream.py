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
