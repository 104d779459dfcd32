"""Windowed store of traffic sufficient statistics (see :mod:`.store`)."""

from neural.mlops.server.traffic.store import (
    DEFAULT_WINDOW_US,
    apply,
    apply_shadow,
    delete_route,
    shadow_totals,
    shadow_windows,
    totals,
    window_start,
    windows,
)

__all__ = [
    "DEFAULT_WINDOW_US",
    "apply",
    "apply_shadow",
    "delete_route",
    "shadow_totals",
    "shadow_windows",
    "totals",
    "window_start",
    "windows",
]
