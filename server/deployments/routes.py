"""What the deployments domain contributes to the routing table.

Per model, an active rollout's split wins over the version a completed deployment left
pinned (the routing service then ranks these against A/B tests); each active shadow
deployment adds a mirror target. A rollout's targeting conditions and header routes ride
on its route: the sidecar sends a request that does not match to the route's last
variant (``untargeted``: the stable version, counted apart from the rollout's stable
share), and a request carrying a routed header value to that variant.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from neural.mlops.server.deployments import store
from neural.mlops.server.deployments.health import mirrored
from neural.mlops.server.deployments.model import DeploymentStrategy
from neural.mlops.server.deployments.store import DeploymentRecord
from neural.mlops.server.routing.model import ModelRoute, RouteVariant, ShadowTarget

UNTARGETED = "untargeted"  # the variant of requests a rollout's targeting leaves out


def route_of(rec: DeploymentRecord) -> ModelRoute:
    """The routing-table entry of an active deployment at its current step."""
    d = rec.deployment
    name = d.model_name
    new_w = d.traffic_percentage / 100.0
    stable = RouteVariant(d.stable_variant, round(1.0 - new_w, 12), name, d.stable_version,
                          rec.stable_upstream)
    new = RouteVariant(d.new_variant, new_w, name, d.model_version, rec.upstream)
    shadows: tuple[ShadowTarget, ...] = ()
    if d.traffic_percentage == 0 and mirrored(d):
        shadows = (ShadowTarget(d.deployment_id, name, d.model_version, rec.upstream,
                                d.plan.mirror_percentage),)
    if d.strategy is DeploymentStrategy.SHADOW:
        variants: tuple[RouteVariant, ...] = (stable,)
    else:
        # The new version first: its share is the low end of the hash range, so a unit
        # that reached it stays on it while the share grows (sticky ramp-up).
        variants = (new, stable)
    if d.targeting:
        # Requests the targeting leaves out are served by the stable version but counted
        # apart (the sidecar sends them to the last variant), so the step's stable window
        # holds the same population as the new version's.
        variants += (RouteVariant(UNTARGETED, 0.0, name, d.stable_version,
                                  rec.stable_upstream),)
    return ModelRoute(model_name=name, route_id=d.deployment_id, kind="deployment",
                      variants=variants, shadows=shadows, targeting=d.targeting,
                      header_routes=d.header_routes)


async def active_routes(conn: AsyncConnection) -> list[ModelRoute]:
    """Active rollouts, the versions pinned by completed ones, and active shadows."""
    routes: dict[str, ModelRoute] = {}
    for deployment_id, name, version, upstream in await store.completed_pins(conn):
        routes[name] = ModelRoute(
            model_name=name, route_id=deployment_id, kind="deployment",
            variants=(RouteVariant("stable", 1.0, name, version, upstream),), pinned=True,
        )
    for rec in await store.active(conn):
        routes[rec.deployment.model_name] = route_of(rec)
    out = list(routes.values())
    for s in await store.active_shadows(conn):
        name, _, version = s.shadow_model.partition(":")
        out.append(ModelRoute(
            model_name=s.model_name, route_id=s.shadow_id, kind="shadow",
            shadows=(ShadowTarget(s.shadow_id, name, version, s.upstream,
                                  s.traffic_percentage),),
        ))
    return out
