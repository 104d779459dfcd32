"""Per-model request resolution: header routes, the deployment, then one test per layer.

A model's routes compile into one :class:`Plan`. :meth:`Plan.resolve` decides, per
request (ASSIGNMENT.md "Layers"):

1. a header route whose header has its value: that variant, nothing else;
2. the deployment route (a rollout in progress or the version a finished one pinned):
   its targeting not matching means its last variant (the stable version; a targeted
   rollout's ``untargeted`` variant, so its analysis sees only eligible requests); its
   first variant, the new version's share, is served and no test sees the request;
3. every layer: the unit's bucket under the layer's salt, one bisect over the layer's
   sorted ranges, and at most one test whose range holds it and whose targeting matches;
   that test's arm comes from its own assigner (salt = test id).

At most one layer of a model *steers* (its tests' arms rewrite the model name/version or
the upstream); its test's arm is what is served, in place of the deployment's stable
variant. The other layers' tests only label the request (their arm is passed upstream in
``x-neural-experiment`` and counted). Each test the request is in counts it in its own
(route, variant) slot, so every analysis sees exactly its eligible units. The cost is
O(layers), independent of the number of tests.

Per request and layer that is one SHA-256 for the bucket, one bisect, the test's
conditions and, when the request is in the test, one SHA-256 for its arm: the unit id is
encoded once per request and each layer's salt prefix once per table; when no condition
of the model reads a ``param.*`` attribute, conditions look headers up in the request's
header index directly (:meth:`~.attributes.RequestAttributes.header_getter`).
"""

from __future__ import annotations

import hashlib
import random
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import structlog

from neural.mlops.sidecar.attributes import RequestAttributes

if TYPE_CHECKING:
    from neural.mlops.sidecar.metrics import Slot
    from neural.mlops.sidecar.router import Route, Shadow, Variant

log = structlog.get_logger(__name__)

# Sent upstream: "<test id>=<arm>" of every test the request is in, comma-separated (one
# metadata entry, whatever the number of layers).
EXPERIMENT_HEADER = "x-neural-experiment"


class Attributes(Protocol):
    """A request's attributes for targeting (``sidecar.attributes.RequestAttributes``)."""

    def get(self, attribute: str) -> str | None: ...


Getter = Callable[[str], "str | None"]
_sha256 = hashlib.sha256
_from_bytes = int.from_bytes
_bisect_right = bisect_right
_INV_2_64 = 2.0**-64  # u * 2**-64 == u / 2**64 exactly (as in assignment.bucket)


def _absent(attribute: str) -> str | None:
    return None


class Recorder(Protocol):
    def record(self, code: str | None, seconds: float, unit: str | None = None) -> None: ...

    def record_custom(self, values: dict[str, float], unit: str | None = None) -> None: ...


class Fanout:
    """Several slots recording one call (a request in tests of several layers)."""

    __slots__ = ("slots",)

    def __init__(self, slots: list[Slot]) -> None:
        self.slots = slots

    def record(self, code: str | None, seconds: float, unit: str | None = None) -> None:
        for s in self.slots:
            s.record(code, seconds, unit)

    def record_custom(self, values: dict[str, float], unit: str | None = None) -> None:
        for s in self.slots:
            s.record_custom(values, unit)


@dataclass(slots=True)
class Resolution:
    """What one request gets: the variant served (None: as the caller sent it, counted in
    ``slot``), where it is counted, the shadows to mirror it to, the tests it is in."""

    variant: Variant | None
    slot: Recorder
    shadows: list[Shadow]
    label: str  # the x-neural-variant value ("" = none)
    assignments: tuple[tuple[str, str], ...] = ()  # ((EXPERIMENT_HEADER, "t1=a,t2=b"),)


def matches(route: Route, attrs: Attributes | None) -> bool:
    m = route.matcher
    if m is None:
        return True
    return m.matches(attrs.get if attrs is not None else _absent)


@dataclass(slots=True)
class Layer:
    """The running tests of one layer: disjoint ranges, sorted by start."""

    layer_id: str
    steers: bool
    starts: list[float]
    routes: list[Route]
    whole: Route | None = None  # one test over [0, 1): no bucket to compute
    prefix: bytes = b""  # utf8(layer_id + ":"), the bucket's salt prefix

    @classmethod
    def of(cls, layer_id: str, routes: list[Route], steers: bool) -> Layer:
        routes = sorted(routes, key=lambda r: r.range_start)
        whole = routes[0] if len(routes) == 1 and routes[0].full else None
        return cls(layer_id, steers, [r.range_start for r in routes], routes, whole,
                   (layer_id + ":").encode())

    def pick(self, unit: bytes | None, get: Getter) -> Route | None:
        """The test whose range holds the unit's bucket (salt = layer id), if its
        targeting matches (``unit``: the UTF-8 unit id; ``get``: the request's attribute
        getter). utf8(prefix) + utf8(unit id) = utf8(prefix + unit id): ASSIGNMENT.md's
        bucket, bit for bit."""
        r = self.whole
        if r is None:
            if unit is None:
                b = random.random()
            else:
                digest = _sha256(self.prefix + unit).digest()
                b = _from_bytes(digest[:8], "big") * _INV_2_64  # = assignment.bucket
            i = _bisect_right(self.starts, b) - 1
            if i < 0:
                return None
            r = self.routes[i]
            if b >= r.range_end:
                return None
        m = r.matcher
        return r if m is None or m.matches(get) else None

    def named(self, variant: str) -> Route | None:
        for r in self.routes:
            if variant in r.by_name:
                return r
        return None


@dataclass(slots=True)
class Plan:
    model_name: str
    default: Route | None  # deployment (rollout / pinned) or shadow-only route
    layers: list[Layer]  # the steering layer first
    shadows: list[Shadow]
    unrouted: Callable[[], Slot]
    headers: dict[str, dict[str, tuple[Route, Variant]]] = field(default_factory=dict)
    forced_units: dict[str, list[Route]] = field(default_factory=dict)
    # Set from the layers: some test has a condition; none reads a param.* attribute
    # (conditions then look headers up directly); some layer needs the unit's bucket.
    conditions: bool = field(init=False, default=False)
    headers_only: bool = field(init=False, default=False)
    buckets: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        matchers = [r.matcher for ly in self.layers for r in ly.routes if r.matcher is not None]
        self.conditions = bool(matchers)
        self.headers_only = not any(m.reads_params for m in matchers)
        self.buckets = any(ly.whole is None for ly in self.layers)

    def resolve(
        self, unit_id: str | None, attrs: Attributes | None, forced: str | None
    ) -> Resolution:
        if self.headers and attrs is not None:
            hit = self._header_route(attrs)
            if hit is not None:
                return Resolution(hit, hit.slot, self.shadows, hit.name)
        served: Variant | None = None
        d = self.default
        if d is not None:
            served = self._deployment(d, unit_id, attrs, forced)
            if len(d.variants) > 1 and served is d.variants[0]:  # the new version's share
                return Resolution(served, served.slot, self.shadows, served.name)
        if not self.layers:
            if served is None:
                return Resolution(None, self.unrouted(), self.shadows, "")
            return Resolution(served, served.slot, self.shadows, served.name)
        return self._tests(served, unit_id, attrs, forced)

    def _header_route(self, attrs: Attributes) -> Variant | None:
        for header, values in self.headers.items():
            value = attrs.get(header)
            if value is not None:
                hit = values.get(value)
                if hit is not None:
                    return hit[1]
        return None

    @staticmethod
    def _deployment(
        d: Route, unit_id: str | None, attrs: Attributes | None, forced: str | None
    ) -> Variant:
        if forced is not None and forced in d.by_name:
            return d.by_name[forced]
        if d.matcher is not None and not matches(d, attrs):
            return d.variants[-1]
        return d.choose(unit_id, None)

    def _tests(
        self, served: Variant | None, unit_id: str | None, attrs: Attributes | None,
        forced: str | None,
    ) -> Resolution:
        steered: Variant | None = None
        labels: list[Variant] = []
        tagged: list[str] = []
        if attrs is None or not self.conditions:  # (without conditions: never called)
            get: Getter = _absent
        elif self.headers_only and type(attrs) is RequestAttributes:
            get = attrs.header_getter()
        else:
            get = attrs.get
        pinned = self.forced_units.get(unit_id) if unit_id is not None else None
        overridden = pinned is not None or forced is not None
        # (Only a layer of several tests, or of one partial test, reads the bucket.)
        unit = unit_id.encode() if unit_id is not None and self.buckets else None
        for layer in self.layers:
            r = (self._in_layer(layer, unit_id, unit, get, forced, pinned) if overridden
                 else layer.pick(unit, get))
            if r is None:
                continue
            v = r.choose(unit_id, forced)
            tagged.append(v.tag)
            if layer.steers:
                steered = v
            else:
                labels.append(v)
        primary = steered or served
        md = ((EXPERIMENT_HEADER, ",".join(tagged)),) if tagged else ()
        if not labels:
            if primary is None:
                return Resolution(None, self.unrouted(), self.shadows, "", md)
            return Resolution(primary, primary.slot, self.shadows, primary.name, md)
        slots = [primary.slot] if primary is not None else [self.unrouted()]
        slots += [v.slot for v in labels]
        label = primary.name if primary is not None else labels[0].name
        return Resolution(primary, Fanout(slots), self.shadows, label, md)

    @staticmethod
    def _in_layer(
        layer: Layer, unit_id: str | None, unit: bytes | None, get: Getter,
        forced: str | None, pinned: list[Route] | None,
    ) -> Route | None:
        """The layer's test this request is in: a unit's QA override or a forced variant
        name put it in that test; otherwise its bucket and the test's targeting decide."""
        if pinned is not None:
            for r in pinned:
                if r.layer_id == layer.layer_id:
                    return r
        if forced is not None:
            named = layer.named(forced)
            if named is not None:
                return named
        return layer.pick(unit, get)


def layers_of(model_name: str, tests: list[Route]) -> list[Layer]:
    """The model's tests grouped by layer, the steering layer first, others by id.

    The control plane never sends what is refused here (it refuses to start such a test);
    a table that does (an older or broken control plane) loses the later route, logged:
    a second steering layer (a unit cannot be served two versions), or a range
    overlapping an earlier test's in the same layer (a unit cannot be in both).
    """
    steering = next((r.layer_id for r in tests if r.steers), None)
    grouped: dict[str, list[Route]] = {}
    for r in tests:
        if r.steers and r.layer_id != steering:
            _refuse(model_name, r, f"layer {steering!r} already chooses the served version")
            continue
        members = grouped.setdefault(r.layer_id, [])
        clash = next((o for o in members if o.range_start < r.range_end
                      and r.range_start < o.range_end), None)
        if clash is not None:
            _refuse(model_name, r, f"its range overlaps {clash.route_id!r}")
            continue
        members.append(r)
    order = sorted(grouped, key=lambda k: (k != steering, k))
    return [Layer.of(k, grouped[k], k == steering) for k in order]


def _refuse(model_name: str, r: Route, why: str) -> None:
    log.error("test route left out", model=model_name, route_id=r.route_id,
              layer=r.layer_id, reason=why)
