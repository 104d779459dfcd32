"""A component's one background loop: started once, cancelled and awaited on stop.

The rollout controller, the guardrail watch, the store watch, route notices, the audit
notary and the leases each run one loop beside the gRPC server. Stopping waits for the
loop to have ended, not merely to be cancelled, so a shutdown never leaves a loop
touching a database that is being closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

log = structlog.get_logger(__name__)


class Background:
    """The task running one component's loop; ``name`` names it in task dumps and logs."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self, loop: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``loop()`` in a task unless one runs already (a second start is a no-op;
        the coroutine is only made when it will be awaited)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(loop(), name=self.name)

    async def stop(self) -> None:
        """Cancel the loop and wait until it has ended; stopping never raises for it."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        except Exception:  # noqa: BLE001 - the loop died earlier; say so, still stop cleanly
            log.exception("background loop had failed", task=self.name)
