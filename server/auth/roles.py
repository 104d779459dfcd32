"""Roles: named sets of permissions. A grant gives a principal (or a group) one role,
optionally scoped to model-name globs; :mod:`.permissions` maps every RPC to exactly one
permission. docs/security.md shows this table (a test keeps the two in step)."""

from __future__ import annotations

from neural.mlops.server.errors import InvalidArgument

# Permissions every caller has without any role: health checks need no credentials at
# all (probes and load balancers); the session ones need an authenticated principal.
PUBLIC = "public"
SESSION = "session"

_VIEW = frozenset({
    "registry.read", "deployments.read", "experiments.read", "experiments.variant",
    "routes.read",
})

ROLES: dict[str, frozenset[str]] = {
    "viewer": _VIEW,
    "author": _VIEW | {
        "registry.write", "registry.stage", "registry.alias", "registry.delete",
        "promotion.request", "experiments.write", "audit.write",
    },
    "reviewer": _VIEW | {"promotion.review", "audit.write"},
    "operator": _VIEW | {
        "deployments.operate", "experiments.operate", "registry.alias", "metrics.report",
        "audit.write",
    },
    "auditor": _VIEW | {"audit.read", "audit.report", "auth.read"},
    # A sidecar (or an application reporting outcomes): route watch, metric reports,
    # variant lookups and nothing else.
    "sidecar": frozenset({"routes.read", "metrics.report", "experiments.variant"}),
    "admin": frozenset(),  # filled below: every permission
}

ROLE_DESCRIPTIONS: dict[str, str] = {
    "viewer": "read models, deployments, tests and routes",
    "author": "register and edit versions, request promotions, create tests",
    "reviewer": "approve or reject promotions",
    "operator": "start/stop tests, splits, deployments, shadows; report metrics",
    "auditor": "query, report, export and verify the audit trail; list tokens and grants",
    "sidecar": "watch routes, report metrics, look up variants",
    "admin": "everything: tokens, grants, purge, key rotation, gate overrides",
}

ADMIN_ONLY = frozenset({"auth.admin", "audit.admin", "deployments.override"})
ALL_PERMISSIONS = frozenset().union(*ROLES.values()) | ADMIN_ONLY
ROLES["admin"] = ALL_PERMISSIONS


def check_role(role: str, *, field: str = "role") -> str:
    """The role named (trimmed, lower case), or a clear InvalidArgument."""
    name = role.strip().lower()
    if name not in ROLES:
        raise InvalidArgument(
            f"unknown role {role!r}; roles: {', '.join(ROLES)}", field=field
        )
    return name
