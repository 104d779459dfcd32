"""The routes experiments contribute: every RUNNING test is one route on its model, over
its range of its layer (server/experiments/layers.py)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from neural.mlops.server.experiments import store
from neural.mlops.server.experiments.model import ABTest, TrafficSplitStrategy
from neural.mlops.server.routing.model import ModelRoute, RouteVariant


def route_of(test: ABTest) -> ModelRoute:
    """The test's route: its variants in hash order, salted by the test id; the units of
    its range of its layer that match its targeting."""
    start, end = test.layer_range or (0.0, 1.0)
    return ModelRoute(
        model_name=test.model_name,
        route_id=test.test_id,
        kind="experiment",
        strategy=("bandit" if test.strategy is TrafficSplitStrategy.MULTI_ARMED_BANDIT
                  else test.strategy.assignment.value),
        variants=tuple(
            RouteVariant(name=x.name, weight=x.weight, model_name=x.model_name,
                         model_version=x.model_version)
            for x in test.variants
        ),
        forced_variants=tuple(sorted(test.forced_variants.items())),
        layer_id=test.layer,
        range_start=start,
        range_end=end,
        targeting=test.targeting,
    )


async def active_routes(conn: AsyncConnection, now_us: int) -> list[ModelRoute]:
    """Running tests as routes, oldest start first (should two conflict, the routing table
    keeps the older: server/routing/compose.py)."""
    return [route_of(store.to_test(row, now_us)) for row in await store.running(conn)]
