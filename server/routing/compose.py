"""How the domains' routes become one table: every running test, one deployment per model.

Per model the table carries (ASSIGNMENT.md "Layers"):

* at most one deployment route: a rollout in progress, else the version a completed
  deployment left pinned. A rollout owns its canary share; the tests on that model see
  only the requests it leaves on its stable variant (the last one) and serve their arms
  to them. A pinned version is what units in no test get.
* the shadow deployments' mirror targets, on the deployment route (or on one shadow-only
  route with a single "primary" variant when the model has no deployment);
* every running A/B test's route. Tests of one layer own disjoint ranges of the layer's
  hash space, and only the tests of one layer per model may *steer* (change the model
  name, version or upstream served): the experiments domain refuses to start or resume a
  test that breaks either rule (server/experiments/layers.py; :func:`conflict` here is
  the same rule over routes). It checks inside the write transaction that starts the
  test, which the store serializes across processes and replicas (SQLite's BEGIN
  IMMEDIATE, PostgreSQL's advisory lock), so two starts at the same moment never both
  pass: one runs, the other is refused naming it (tests/test_layers_race.py). A table
  that would still break a rule (tests running since before layers, when a model could
  run several over all its traffic, or rows restored or edited outside the control
  plane) keeps the test started first and logs the other, so no sidecar is ever asked to
  serve a unit two versions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

import structlog

from neural.mlops.server.routing.model import ModelRoute

log = structlog.get_logger(__name__)


def steers(route: ModelRoute) -> bool:
    """True if some arm of the route serves something other than what the caller asked
    for (another model, a pinned version, another upstream)."""
    return any(
        v.model_name not in ("", route.model_name) or v.model_version or v.upstream
        for v in route.variants
    )


def layer_of(route: ModelRoute) -> str:
    """The route's layer (a test without one has a layer of its own)."""
    return route.layer_id or route.route_id


def overlaps(a: ModelRoute, b: ModelRoute) -> bool:
    return (layer_of(a) == layer_of(b) and a.range_start < b.range_end
            and b.range_start < a.range_end)


def conflict(route: ModelRoute, others: Iterable[ModelRoute]) -> tuple[ModelRoute, str] | None:
    """The first of ``others`` (tests already holding traffic) that ``route`` cannot run
    beside, with the reason: ``LAYER_RANGE_TAKEN`` (same layer, overlapping range) or
    ``LAYER_STEERING_TAKEN`` (same model, another layer already chooses the version)."""
    mine = steers(route)
    for o in others:
        if o.route_id == route.route_id:
            continue
        if overlaps(route, o):
            return o, "LAYER_RANGE_TAKEN"
        if mine and o.model_name == route.model_name and layer_of(o) != layer_of(route) \
                and steers(o):
            return o, "LAYER_STEERING_TAKEN"
    return None


def _precedence(route: ModelRoute) -> int:
    """Which deployment route serves a model claimed by several (lower wins; a tie keeps
    the first): a rollout in progress, then the version a completed deployment pinned."""
    return 1 if route.pinned else 0


def _deployments(routes: Sequence[ModelRoute]) -> dict[str, ModelRoute]:
    """Per model its deployment route, with every shadow deployment's targets on it."""
    chosen: dict[str, ModelRoute] = {}
    for r in routes:
        if r.kind == "deployment":
            had = chosen.get(r.model_name)
            if had is None or _precedence(r) < _precedence(had):
                chosen[r.model_name] = r
    for r in routes:
        if r.kind in ("deployment", "experiment"):
            continue
        had = chosen.get(r.model_name)
        if had is None:
            chosen[r.model_name] = r  # a shadow-only route: its "primary" variant serves
        else:
            chosen[r.model_name] = replace(had, shadows=had.shadows + r.shadows)
    return chosen


def _tests(routes: Sequence[ModelRoute]) -> list[ModelRoute]:
    kept: list[ModelRoute] = []
    for r in routes:
        if r.kind != "experiment":
            continue
        clash = conflict(r, kept)
        if clash is not None:
            log.error("test route left out: it conflicts with a test started earlier",
                      model=r.model_name, route_id=r.route_id, holder=clash[0].route_id,
                      reason=clash[1])
            continue
        kept.append(r)
    return kept


def compose(routes: Sequence[ModelRoute]) -> tuple[ModelRoute, ...]:
    """The table's routes: per model its deployment (or shadow-only) route, then its
    tests in the order the experiments domain gave them (oldest start first)."""
    out = list(_deployments(routes).values()) + _tests(routes)
    return tuple(sorted(out, key=lambda r: (r.model_name, r.kind == "experiment")))
