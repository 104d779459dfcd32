"""Layers: many A/B tests on one model at once (ASSIGNMENT.md "Layers").

A test belongs to a layer (default: its model's own, ``<model_name>:default``). The tests
of one layer are mutually exclusive: each owns a range ``[start, end)`` of the layer's
hash space, and a unit is in the test whose range holds ``bucket(layer, unit)``. Tests of
different layers overlap independently (different salts). Layer names are global, so a
layer may also span models (an exclusion group: a unit is in at most one of its tests,
whichever model they route).

A test asks for a share of its layer (``layer_share``, default all of it) or an exact
``range``. A share becomes a range when the test first starts: the first free gap of
that width among the layer's RUNNING and PAUSED tests; pausing keeps it, stopping frees
it. Starting a test that does not fit is refused, naming the test that holds the space:

* ``LAYER_RANGE_TAKEN``: its range overlaps a live test of the layer, or no gap is wide
  enough for its share;
* ``LAYER_STEERING_TAKEN``: its arms serve different versions of the model and another
  layer's live test on that model does too (only one layer per model may choose the
  version served; the others' arms are labels passed upstream, see
  ``server/routing/compose.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from neural.mlops.server import validation as v
from neural.mlops.server.errors import FailedPrecondition, InvalidArgument
from neural.mlops.v1 import targeting

EPSILON = 1e-12  # gaps and widths compare with this slack (shares are decimal fractions)


def default_layer(model_name: str) -> str:
    """The layer of a test that names none: its model's own."""
    return f"{model_name}:default"


@dataclass(frozen=True, slots=True)
class LayerSpec:
    layer: str  # "" = the model's default layer
    share: float
    fixed: tuple[float, float] | None  # an exact range asked for at create
    targeting: tuple[str, ...]  # canonical condition texts


def parse_range(value: object, field: str = "range") -> tuple[float, float]:
    """``(start, end)`` with 0 <= start < end <= 1."""
    if isinstance(value, str | bytes) or not isinstance(value, Sequence) or len(value) != 2:
        raise InvalidArgument(f"{field} must be (start, end)", field=field)
    first, second = value[0], value[1]
    lo, hi = v.fraction(first, f"{field}.start"), v.fraction(second, f"{field}.end")
    if not lo < hi:
        raise InvalidArgument(f"{field} [{lo}, {hi}) is empty: start must be below end",
                              field=field)
    return lo, hi


def parse_targeting(texts: object, field: str = "targeting") -> tuple[str, ...]:
    """Condition texts (``x-country in [DE, FR]``) as their canonical texts; an error
    names the condition and its wrong part (``targeting[1].values``)."""
    if texts is None:
        return ()
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise InvalidArgument(f"{field} must be a list of conditions", field=field)
    conds = []
    for i, text in enumerate(texts):
        where = f"{field}[{i}]"
        if not isinstance(text, str):
            raise InvalidArgument(f"{where} must be a condition's text, e.g. 'x-plan = pro'",
                                  field=where)
        try:
            conds.append(targeting.parse(text))
        except targeting.ConditionError as exc:
            part = f"{where}.{exc.field}" if exc.field else where
            raise InvalidArgument(f"{part}: {exc.detail}", field=part) from None
    try:
        targeting.validate(conds, field)
    except targeting.ConditionError as exc:
        raise InvalidArgument(str(exc), field=exc.field) from None
    return tuple(targeting.format(c) for c in conds)


def parse_layer(layer: object, share: object, fixed: object, texts: object) -> LayerSpec:
    """Check the layer arguments of create_test."""
    name = v.name(layer, "layer") if layer else ""
    if fixed is not None and share not in (None, 0, 0.0):
        raise InvalidArgument("pass layer_share or range, not both", field="layer_share")
    rng = parse_range(fixed) if fixed is not None else None
    width = 1.0 if share in (None, 0, 0.0) else v.fraction(share, "layer_share")
    if width <= 0.0:
        raise InvalidArgument("layer_share must be in (0, 1]", field="layer_share")
    if rng is not None:
        width = rng[1] - rng[0]
    return LayerSpec(name, width, rng, parse_targeting(texts))


def layer_config(spec: LayerSpec, model_name: str) -> dict[str, object]:
    """What a new test keeps of its layer arguments (in its config JSON)."""
    return {"layer": spec.layer or default_layer(model_name), "layer_share": spec.share,
            "range": list(spec.fixed) if spec.fixed is not None else None,
            "targeting": list(spec.targeting)}


@dataclass(frozen=True, slots=True)
class Holder:
    """A live test of the layer (or of the model) and the space it holds."""

    test_id: str
    model_name: str
    layer: str
    start: float
    end: float
    steers: bool


def steers(refs: Sequence[str], model_name: str) -> bool:
    """True if some arm's model ref names another model or a version (the arm changes
    what is served); bare ``model_name`` arms only label the request."""
    return any(r != model_name for r in refs)


def place(me: Holder, share: float, fixed: bool, holders: Sequence[Holder]) -> tuple[float, float]:
    """The range ``me`` gets in its layer, or FailedPrecondition naming the holder."""
    for h in holders:
        if h.steers and me.steers and h.model_name == me.model_name and h.layer != me.layer:
            raise FailedPrecondition(
                f"test {h.test_id!r} in layer {h.layer!r} already chooses which version of "
                f"{me.model_name!r} is served; a test in layer {me.layer!r} may not as well "
                f"(put this test in layer {h.layer!r}, or give its arms the bare model name "
                "to run it as a label)", reason="LAYER_STEERING_TAKEN", field="layer")
    mine = sorted((h for h in holders if h.layer == me.layer), key=lambda h: h.start)
    if fixed:
        for h in mine:
            if h.start < me.end - EPSILON and me.start < h.end - EPSILON:
                raise FailedPrecondition(
                    f"range [{me.start:g}, {me.end:g}) of layer {me.layer!r} overlaps test "
                    f"{h.test_id!r}, which holds [{h.start:g}, {h.end:g})",
                    reason="LAYER_RANGE_TAKEN", field="range")
        return me.start, me.end
    at = 0.0
    for h in [*mine, Holder("", "", me.layer, 1.0, 1.0, False)]:
        if h.start - at >= share - EPSILON:
            return at, min(1.0, at + share)
        at = max(at, h.end)
    held = ", ".join(f"test {h.test_id!r} holds [{h.start:g}, {h.end:g})" for h in mine)
    raise FailedPrecondition(
        f"layer {me.layer!r} has no free range of width {share:g}: {held}",
        reason="LAYER_RANGE_TAKEN", field="layer_share")
