"""What a test opened in the pytest process and must close when it ends.

The Python API caches one embedded store per folder for the life of the process
(:class:`EmbeddedRuntime`: a loop thread with its epoll and eventfd, the SQLite files, the
audit checkpoint loop) and keeps the remote connections it opened (a gRPC channel each).
A test that creates an API object on its ``tmp_path`` and never closes it would leave
them open until the process exits: over a full run the pytest process then passes 1024
descriptors, and the checkpoint loops of stores whose folders are gone log into streams
pytest has closed. :func:`closing_what_the_test_opens` closes, after each test, what was
opened while it ran (module-wide fixtures are set up before it starts, so they keep
theirs)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from neural.mlops._runtime import EmbeddedRuntime, _RemoteLoop


@contextmanager
def closing_what_the_test_opens(
    keep_under: Path | None = None, own: Callable[[], Path | None] = lambda: None,
    remote: bool = True,
) -> Iterator[None]:
    """Close, on exit, the embedded stores opened inside the block, except those under
    ``keep_under`` (a module's fixtures may open theirs while one of its tests runs) unless
    under ``own()`` (the test's own tmp_path); with ``remote``, the remote connections
    opened inside the block too."""
    stores = set(EmbeddedRuntime._instances)
    connections = set(_RemoteLoop._open)
    try:
        yield
    finally:
        if remote:
            for conn in [c for c in _RemoteLoop._open if c not in connections]:
                _RemoteLoop.close(conn)
        mine = own()
        mine = mine.resolve() if mine is not None else None
        with EmbeddedRuntime._guard:
            opened = [p for p in EmbeddedRuntime._instances if p not in stores
                      and (keep_under is None or not p.is_relative_to(keep_under)
                           or (mine is not None and p.is_relative_to(mine)))]
            runtimes = [EmbeddedRuntime._instances.pop(p) for p in opened]
        for rt in runtimes:
            rt.close()
