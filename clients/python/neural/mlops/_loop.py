"""An asyncio event loop on a private thread, driven by blocking callers.

The Python API is synchronous; the domain services and grpc.aio are asynchronous. Each
API object hands its coroutines to one of these loops and waits for the answer, so a
caller's own event loop (if it has one) is never touched.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TypeVar

T = TypeVar("T")



class _Done:
    """A step's answer once the iterator is exhausted or out of time."""


class LoopThread:
    """One event loop running forever in a daemon thread."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return not self.loop.is_closed() and self._thread.is_alive()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and return its result (or raise its exception).
        Never call it from the loop's own thread: it would wait for itself."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def iterate(
        self,
        items: AsyncIterator[T],
        *,
        timeout: float | None = None,
        scope: Callable[[], AbstractContextManager[object]] = nullcontext,
    ) -> Iterator[T]:
        """Pull ``items`` (an async iterator that lives on this loop) one item at a time.

        Ends when ``items`` does, or quietly once ``timeout`` seconds have passed (a watch
        that simply ran its course); closing the returned iterator early closes ``items``.
        Each step runs inside ``scope()``, so the caller's identity is set while it runs."""
        deadline = None if timeout is None else time.monotonic() + timeout

        async def step() -> T | _Done:
            with scope():
                left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
                try:
                    return await asyncio.wait_for(anext(items), left)
                except (StopAsyncIteration, TimeoutError):
                    return _Done()

        try:
            while not isinstance(item := self.run(step()), _Done):
                yield item
        finally:
            close = getattr(items, "aclose", None)
            if close is not None and self.running:
                self.run(close())

    def stop(self) -> None:
        if not self.running:
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.loop.close()
