"""Who hears about a committed deployment change: watchers, the controller, routing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from neural.mlops.server.storage import Change


class Signals:
    """Wake-ups fired on commit, never before: a watcher or the routing table that read
    the store on an uncommitted change would see the old state and sleep through it."""

    def __init__(self, on_routes_changed: Callable[[], None] | None = None) -> None:
        self.on_routes_changed = on_routes_changed or (lambda: None)
        self._changed: asyncio.Event | None = None
        self.wake: asyncio.Event | None = None  # the controller loop's, once it runs

    def changed(self) -> asyncio.Event:
        """The event the next committed change sets (a watcher waits on it)."""
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
        self._changed = asyncio.Event()
        if self.wake is not None:
            self.wake.set()

    def committed(self, ch: Change, routes: bool = True) -> None:
        """Notify on ``ch``'s commit; ``routes``: the routing table must be rebuilt too."""
        ch.on_commit(self._notify)
        if routes:
            ch.on_commit(self.on_routes_changed)
