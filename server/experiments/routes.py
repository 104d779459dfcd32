"""The routes experiments contribute: every RUNNING test is one route on its model."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from neural.mlops.server.experiments import store
from neural.mlops.server.experiments.model import ABTest, TrafficSplitStrategy
from neural.mlops.server.routing.model import ModelRoute, RouteVariant


def route_of(test: ABTest) -> ModelRoute:
    """The test's route: its variants in hash order, salted by the test id."""
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
    )


async def active_routes(conn: AsyncConnection, now_us: int) -> list[ModelRoute]:
    """Running tests as routes, oldest first (the routing table keeps the first route per
    model)."""
    return [route_of(store.to_test(row, now_us)) for row in await store.running(conn)]
