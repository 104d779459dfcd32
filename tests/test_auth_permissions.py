"""The permission table covers every RPC of every service the control plane serves, and
docs/security.md shows the same roles."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

import neural.mlops.v1 as v1
from neural.mlops.server.auth.permissions import RULES
from neural.mlops.server.auth.roles import ADMIN_ONLY, ALL_PERMISSIONS, PUBLIC, ROLES, SESSION
from neural.mlops.server.reflection import V1_SERVICE_NAME, register_v1_descriptor

DOCS = Path(__file__).resolve().parent.parent / "docs" / "security.md"


def served_methods() -> set[str]:
    modules = [importlib.import_module(f"{v1.__name__}.{m.name}")
               for m in pkgutil.iter_modules(v1.__path__) if m.name.endswith("_pb2")]
    out = set()
    for module in [*modules, health_pb2, reflection_pb2]:
        for service in module.DESCRIPTOR.services_by_name.values():
            out |= {f"/{service.full_name}/{m.name}" for m in service.methods}
    register_v1_descriptor()  # reflection v1 is served from a descriptor built at start
    v1_reflection = descriptor_pool.Default().FindServiceByName(V1_SERVICE_NAME)
    return out | {f"/{V1_SERVICE_NAME}/{m.name}" for m in v1_reflection.methods}


def test_every_rpc_of_the_protos_has_exactly_one_permission() -> None:
    methods = served_methods()
    missing = sorted(methods - RULES.keys())
    assert not missing, f"add these methods to server/auth/permissions.py: {missing}"
    stale = sorted(RULES.keys() - methods)
    assert not stale, f"the permission table names methods no proto has: {stale}"


def test_every_permission_in_the_table_is_held_by_some_role() -> None:
    used = {r.permission for r in RULES.values()}
    used |= {perm for r in RULES.values() for _, perm in r.elevated}
    assert used - {PUBLIC, SESSION} <= ALL_PERMISSIONS
    assert ALL_PERMISSIONS - ADMIN_ONLY <= used, "a role holds a permission no RPC needs"


def test_rule_fields_exist_on_the_request_messages() -> None:
    modules = [importlib.import_module(f"{v1.__name__}.{m.name}")
               for m in pkgutil.iter_modules(v1.__path__) if m.name.endswith("_pb2")]
    for module in modules:
        for service in module.DESCRIPTOR.services_by_name.values():
            for m in service.methods:
                rule = RULES[f"/{service.full_name}/{m.name}"]
                paths = [*rule.models, *rule.actors, *rule.namespaced,
                         *(f for f, _ in rule.elevated)]
                if rule.resource:
                    paths.append(rule.resource[1])
                for path in paths:
                    desc = m.input_type
                    for part in path.split("."):
                        assert part in desc.fields_by_name, f"{m.full_name}: no field {path}"
                        f = desc.fields_by_name[part]
                        desc = f.message_type or desc


def test_the_sidecar_role_holds_route_watch_metric_reports_and_variant_lookups_only() -> None:
    allowed = {name for name, r in RULES.items() if r.permission in ROLES["sidecar"]}
    assert allowed == {
        "/neural.mlops.v1.RoutingService/WatchRoutes",
        "/neural.mlops.v1.RoutingService/GetRoutingTable",
        "/neural.mlops.v1.RoutingService/ReportMetrics",
        "/neural.mlops.v1.ExperimentService/GetVariant",
        "/neural.mlops.v1.ExperimentService/RecordRequests",
        "/neural.mlops.v1.ExperimentService/RecordOutcome",
        "/neural.mlops.v1.DeploymentService/UpdateMetrics",
        "/neural.mlops.v1.DeploymentService/RecordShadowComparison",
    }


def test_docs_role_table_matches_the_roles() -> None:
    text = DOCS.read_text()
    rows = dict(re.findall(r"^\| `(\w+)` \| [^|]* \| ([^|]+) \|$", text, flags=re.M))
    assert set(rows) == set(ROLES), "docs/security.md: one row per role"
    for role, perms in ROLES.items():
        documented = {p.strip(" `") for p in rows[role].split(",")}
        expected = {"all"} if role == "admin" else set(perms)
        assert documented == expected, f"docs/security.md row for {role}"
