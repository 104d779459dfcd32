"""Per-(route, variant) traffic windows, cut every flush interval into metric batches.

The per-request cost is a handful of integer and float additions on a slot object that
the router resolved once per routing table: no locks (one event loop), no allocation on
the OK path, one C ``bisect`` for the latency bucket (the contract's fixed log-spaced
bounds, :data:`neural.mlops.v1.traffic.LATENCY_BOUNDS`). A flush swaps every slot's
window for a fresh one and turns the old ones into ``VariantWindow`` messages.

Cumulative totals (for Prometheus) are kept beside the windows and never reset.

Experiment routes also count each window's requests per randomization unit (the routing
key header's value), so the control plane can analyse by unit: a dict lookup and three
additions per call, keyed by the raw header value; the unit's 64-bit key
(:func:`neural.mlops.v1.units.unit_key`) is computed once per unit at the cut, off the
request path. A window keeps at most :data:`MAX_UNITS` units; later units' requests are
counted as overflow and reported, and the analysis shows them as requests without a unit.

A window's units are columns (:class:`UnitColumns`): unit id -> row in a dict of strings
to ints, the counts in ``array`` columns. Neither holds an object the garbage collector
tracks, so a unit costs no GC work however long the window lives. (An entry per unit as a
list, as before, was a tracked object per unit and test: with a request in 5 tests and a
fresh unit per request, those lists filled the older generations and made full
collections several times as frequent; issue #16.)
"""

from __future__ import annotations

import time
from array import array
from bisect import bisect_right
from dataclasses import dataclass, field

from neural.mlops.sidecar.units import UnitKeys, unit_breakdowns
from neural.mlops.v1 import routing_pb2
from neural.mlops.v1.traffic import LATENCY_BOUNDS, MAX_DISAGREEMENT_SAMPLES
from neural.mlops.v1.units import MAX_UNITS_PER_WINDOW

_OK = 0  # grpc.StatusCode.OK.value[0]


class UnitColumns:
    """One window's per-unit counts: ``rows`` maps a unit id to its row in the columns
    (insertion order = row order); ``custom`` maps a row to {name: [n, sum]} (only units
    that had custom metrics)."""

    __slots__ = ("rows", "requests", "errors", "latency", "custom")

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self.requests = array("q")
        self.errors = array("q")
        self.latency = array("d")
        self.custom: dict[int, dict[str, list[float]]] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, unit: str) -> int:
        """A new unit's row."""
        i = self.rows[unit] = len(self.rows)
        self.requests.append(0)
        self.errors.append(0)
        self.latency.append(0.0)
        return i


class Window:
    """One window of one (route, variant): mergeable sufficient statistics."""

    __slots__ = (
        "count",
        "errors",
        "codes",
        "lat_sum",
        "lat_sq",
        "lat_min",
        "lat_max",
        "buckets",
        "custom",
        "units",
        "unit_overflow",
    )

    def __init__(self) -> None:
        self.count = 0
        self.errors = 0
        self.codes: dict[str, int] = {}
        self.lat_sum = 0.0
        self.lat_sq = 0.0
        self.lat_min = float("inf")
        self.lat_max = 0.0
        self.buckets: dict[int, int] = {}
        self.custom: dict[str, list[float]] | None = None  # name -> [n, sum, sum_squares]
        self.units: UnitColumns | None = None  # per unit (experiment routes)
        self.unit_overflow = 0  # requests of units past MAX_UNITS


MAX_CUSTOM_METRICS = 32
MAX_UNITS = MAX_UNITS_PER_WINDOW  # per window and slot


class Slot:
    """Where one (model, route, variant) records; resolved once per routing table."""

    __slots__ = (
        "model_name",
        "route_id",
        "variant",
        "window",
        "total",
        "total_errors",
        "codes",
        "hist",
        "lat_sum",
        "per_unit",
    )

    def __init__(self, model_name: str, route_id: str, variant: str) -> None:
        self.model_name = model_name
        self.route_id = route_id
        self.variant = variant
        self.per_unit = False  # count per unit (experiment routes); set by the router
        self.window = Window()
        # Cumulative, for Prometheus.
        self.total = 0
        self.total_errors = 0
        self.codes: dict[str, int] = {}
        self.hist: dict[int, int] = {}
        self.lat_sum = 0.0

    def record_custom(self, values: dict[str, float], unit: str | None = None) -> None:
        """Custom metrics of one call (from the upstream's ``x-neural-metric-*`` trailers),
        before its :meth:`record`."""
        w = self.window
        if w.custom is None:
            w.custom = {}
        c = w.custom
        us = row = None
        if unit is not None and self.per_unit:
            us = w.units
            if us is None:
                us = w.units = UnitColumns()
            row = us.rows.get(unit)
            if row is None and len(us.rows) < MAX_UNITS:
                row = us.add(unit)
        for name, x in values.items():
            m = c.get(name)
            if m is None:
                if len(c) >= MAX_CUSTOM_METRICS:
                    continue
                m = c[name] = [0, 0.0, 0.0]
            m[0] += 1
            m[1] += x
            m[2] += x * x
            if us is not None and row is not None:
                _unit_custom(us, row, name, x)

    def record(self, code_name: str | None, seconds: float, unit: str | None = None) -> None:
        """One finished call: ``code_name`` None for OK, else the gRPC status name;
        ``unit``: the routing key's value, if the call had one."""
        w = self.window
        w.count += 1
        self.total += 1
        if code_name is not None:
            w.errors += 1
            self.total_errors += 1
            w.codes[code_name] = w.codes.get(code_name, 0) + 1
            self.codes[code_name] = self.codes.get(code_name, 0) + 1
        w.lat_sum += seconds
        w.lat_sq += seconds * seconds
        if seconds < w.lat_min:
            w.lat_min = seconds
        if seconds > w.lat_max:
            w.lat_max = seconds
        i = bisect_right(LATENCY_BOUNDS, seconds)
        b = w.buckets
        b[i] = b.get(i, 0) + 1
        h = self.hist
        h[i] = h.get(i, 0) + 1
        self.lat_sum += seconds
        if unit is not None and self.per_unit:
            us = w.units
            if us is None:
                us = w.units = UnitColumns()
            row = us.rows.get(unit)
            if row is None:
                if len(us.rows) >= MAX_UNITS:
                    w.unit_overflow += 1
                    return
                row = us.add(unit)
            us.requests[row] += 1
            if code_name is not None:
                us.errors[row] += 1
            us.latency[row] += seconds


def _unit_custom(us: UnitColumns, row: int, name: str, x: float) -> None:
    c = us.custom
    if c is None:
        c = us.custom = {}
    per = c.get(row)
    if per is None:
        per = c[row] = {}
    m = per.get(name)
    if m is None:
        m = per[name] = [0, 0.0]
    m[0] += 1
    m[1] += x


def _dense(counts: dict[int, int]) -> list[int]:
    if not counts:
        return []
    out = [0] * (max(counts) + 1)
    for i, c in counts.items():
        out[i] = c
    return out


class ShadowWindow:
    __slots__ = (
        "mirrored",
        "agreed",
        "disagreed",
        "errors",
        "dropped",
        "lat_sum",
        "lat_sq",
        "buckets",
        "p_sum",
        "p_sq",
        "p_buckets",
        "samples",
    )

    def __init__(self) -> None:
        self.mirrored = 0
        self.agreed = 0
        self.disagreed = 0
        self.errors = 0
        self.dropped = 0
        self.lat_sum = 0.0
        self.lat_sq = 0.0
        self.buckets: dict[int, int] = {}
        self.p_sum = 0.0
        self.p_sq = 0.0
        self.p_buckets: dict[int, int] = {}
        self.samples: list[routing_pb2.ShadowSample] = []


class ShadowSlot:
    """Where one (route, shadow target) records; also cumulative totals for Prometheus."""

    __slots__ = (
        "model_name",
        "route_id",
        "shadow_id",
        "window",
        "mirrored",
        "agreed",
        "disagreed",
        "errors",
        "dropped",
    )

    def __init__(self, model_name: str, route_id: str, shadow_id: str) -> None:
        self.model_name = model_name
        self.route_id = route_id
        self.shadow_id = shadow_id
        self.window = ShadowWindow()
        self.mirrored = self.agreed = self.disagreed = self.errors = self.dropped = 0

    def drop(self) -> None:
        self.window.dropped += 1
        self.dropped += 1

    def record(
        self,
        *,
        agreed: bool | None,
        error: bool,
        shadow_seconds: float,
        primary_seconds: float,
        sample: routing_pb2.ShadowSample | None = None,
    ) -> None:
        w = self.window
        w.mirrored += 1
        self.mirrored += 1
        if error:
            w.errors += 1
            self.errors += 1
        if agreed is True:
            w.agreed += 1
            self.agreed += 1
        elif agreed is False:
            w.disagreed += 1
            self.disagreed += 1
            if sample is not None and len(w.samples) < MAX_DISAGREEMENT_SAMPLES:
                w.samples.append(sample)
        w.lat_sum += shadow_seconds
        w.lat_sq += shadow_seconds * shadow_seconds
        i = bisect_right(LATENCY_BOUNDS, shadow_seconds)
        w.buckets[i] = w.buckets.get(i, 0) + 1
        w.p_sum += primary_seconds
        w.p_sq += primary_seconds * primary_seconds
        i = bisect_right(LATENCY_BOUNDS, primary_seconds)
        w.p_buckets[i] = w.p_buckets.get(i, 0) + 1


@dataclass
class Aggregator:
    """All slots of the process; :meth:`cut` closes the current window."""

    window_seconds: float = 1.0
    slots: dict[tuple[str, str, str], Slot] = field(default_factory=dict)
    shadow_slots: dict[tuple[str, str], ShadowSlot] = field(default_factory=dict)
    window_start: float = field(default_factory=time.time)
    unit_keys: UnitKeys = field(default_factory=UnitKeys)

    def slot(self, model_name: str, route_id: str, variant: str, *,
             per_unit: bool = False) -> Slot:
        key = (model_name, route_id, variant)
        s = self.slots.get(key)
        if s is None:
            s = self.slots[key] = Slot(model_name, route_id, variant)
        s.per_unit = per_unit
        return s

    def shadow_slot(self, model_name: str, route_id: str, shadow_id: str) -> ShadowSlot:
        key = (route_id, shadow_id)
        s = self.shadow_slots.get(key)
        if s is None:
            s = self.shadow_slots[key] = ShadowSlot(model_name, route_id, shadow_id)
        return s

    def cut(
        self, now: float | None = None
    ) -> tuple[list[routing_pb2.VariantWindow], list[routing_pb2.ShadowWindow]]:
        """Close the current window of every slot; returns the non-empty ones as messages.

        Only routed traffic (a route id) is reported to the control plane; unrouted calls
        still count in the cumulative Prometheus totals.
        """
        now = time.time() if now is None else now
        start_us = int(self.window_start * 1_000_000)
        window_us = max(int((now - self.window_start) * 1_000_000), 1)
        self.window_start = now
        windows = []
        for slot in self.slots.values():
            w = slot.window
            if w.count == 0:
                continue
            slot.window = Window()
            if not slot.route_id:
                continue
            msg = routing_pb2.VariantWindow(
                route_id=slot.route_id,
                variant=slot.variant,
                model_name=slot.model_name,
                window_start_us=start_us,
                window_us=window_us,
                count=w.count,
                errors=w.errors,
                successes=w.count - w.errors,
                status_codes=w.codes,
                latency_seconds=routing_pb2.Moments(n=w.count, sum=w.lat_sum, sum_squares=w.lat_sq),
                latency_buckets=_dense(w.buckets),
                latency_min_seconds=w.lat_min,
                latency_max_seconds=w.lat_max,
                custom={
                    k: routing_pb2.Moments(n=int(m[0]), sum=m[1], sum_squares=m[2])
                    for k, m in (w.custom or {}).items()
                },
            )
            windows.append(msg)
            if w.units is not None:
                first, *more = unit_breakdowns(w, self.unit_keys)
                msg.units.CopyFrom(first)
                windows += [
                    routing_pb2.VariantWindow(
                        route_id=slot.route_id, variant=slot.variant, model_name=slot.model_name,
                        window_start_us=start_us, window_us=window_us, units=b,
                    )
                    for b in more
                ]
        shadows = []
        for ss in self.shadow_slots.values():
            sw = ss.window
            if sw.mirrored == 0 and sw.dropped == 0:
                continue
            ss.window = ShadowWindow()
            shadows.append(
                routing_pb2.ShadowWindow(
                    route_id=ss.route_id,
                    shadow_id=ss.shadow_id,
                    model_name=ss.model_name,
                    window_start_us=start_us,
                    window_us=window_us,
                    mirrored=sw.mirrored,
                    agreed=sw.agreed,
                    disagreed=sw.disagreed,
                    errors=sw.errors,
                    dropped=sw.dropped,
                    latency_seconds=routing_pb2.Moments(
                        n=sw.mirrored, sum=sw.lat_sum, sum_squares=sw.lat_sq
                    ),
                    latency_buckets=_dense(sw.buckets),
                    primary_latency_seconds=routing_pb2.Moments(
                        n=sw.mirrored, sum=sw.p_sum, sum_squares=sw.p_sq
                    ),
                    primary_latency_buckets=_dense(sw.p_buckets),
                    samples=sw.samples,
                )
            )
        return windows, shadows
