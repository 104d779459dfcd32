"""Authorization of one call: the permission its :class:`Rule` names, held through a
grant whose model glob covers the call's model, and the request's actor fields bound to
the principal.

A grant scoped to globs covers only calls that name a model (in a request field, or
through the deployment, test or shadow the call is about): listing across models,
the audit trail and administration need an unscoped (``*``) grant.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from neural.mlops.server.auth.grants import Grant
from neural.mlops.server.auth.permissions import Rule
from neural.mlops.server.auth.principal import Principal, normalize_identity
from neural.mlops.server.auth.roles import PUBLIC, ROLES, SESSION
from neural.mlops.server.errors import PermissionDenied

ModelOf = Callable[[str, str], Awaitable[str]]  # (resource kind, id) -> model name or ""


def field_value(msg: Any, path: str) -> tuple[Any, str] | None:
    """(the message holding the last field of ``path``, that field's name), or None when
    an enclosing message field is not set (a streamed chunk has no ``metadata``)."""
    *parents, leaf = path.split(".")
    for name in parents:
        if not msg.HasField(name):
            return None
        msg = getattr(msg, name)
    return msg, leaf


def _present(request: Any, paths: Iterable[str]) -> Iterator[tuple[str, Any, str, Any]]:
    """(path, the message holding its field, the field's name, its value) for each of
    ``paths`` that ``request`` carries; a path under an unset message is skipped."""
    for path in paths:
        found = field_value(request, path)
        if found is not None:
            msg, name = found
            yield path, msg, name, getattr(msg, name)


def _text(msg: Any, path: str) -> str:
    found = field_value(msg, path)
    return getattr(found[0], found[1]) if found is not None else ""


def _model_name(ref: str) -> str:
    return ref.split(":", 1)[0].strip()  # "name:version" refs name a model too


@dataclass(frozen=True, slots=True)
class Decision:
    """Scoped grants that still need the call's model (streamed requests: per message)."""

    permission: str
    globs: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return not self.globs


def _denied(permission: str, method: str, principal: Principal, grants: list[Grant]) -> str:
    roles = sorted({g.role for g in grants})
    held = ", ".join(roles) if roles else "no roles"
    return (f"permission {permission!r} is required for {method}; "
            f"{principal.name} ({principal.method}) holds {held}")


class Authorizer:
    def __init__(self, model_of: ModelOf) -> None:
        self._model_of = model_of

    def decide(
        self, method: str, rule: Rule, principal: Principal, grants: list[Grant],
        request: Any | None,
    ) -> list[Decision]:
        """The permissions the call needs, each either granted outright or still to be
        checked against the call's model; PermissionDenied when one is not held at all."""
        needed = [rule.permission]
        if request is not None:
            needed += [perm for path, perm in rule.elevated if _text(request, path)]
        out: list[Decision] = []
        for perm in needed:
            if perm in (PUBLIC, SESSION):
                continue
            holders = [g for g in grants if perm in ROLES.get(g.role, ())]
            if not holders:
                raise PermissionDenied(_denied(perm, method, principal, grants),
                                       reason="PERMISSION_MISSING")
            if any(g.models == "*" for g in holders):
                continue
            out.append(Decision(perm, tuple(sorted({g.models for g in holders}))))
        return out

    async def check_models(
        self, method: str, rule: Rule, principal: Principal, scoped: list[Decision],
        request: Any,
    ) -> None:
        """Scoped grants: every model the request names must match one of the globs."""
        if not scoped:
            return
        models = [_model_name(_text(request, path)) for path in rule.models]
        if rule.resource is not None:
            kind, id_field = rule.resource
            resource_id = _text(request, id_field)
            if resource_id:
                models.append(await self._model_of(kind, resource_id))
        models = [m for m in models if m]
        for d in scoped:
            globs = ", ".join(d.globs)
            if not models:
                raise PermissionDenied(
                    f"permission {d.permission!r} is held by {principal.name} only for models "
                    f"{globs}, and {method} names no model (or an unknown one)",
                    reason="PERMISSION_MISSING",
                )
            for model in models:
                if not any(fnmatchcase(model, g) for g in d.globs):
                    raise PermissionDenied(
                        f"permission {d.permission!r} is held by {principal.name} only for "
                        f"models {globs}, not for {model!r}",
                        reason="PERMISSION_MISSING",
                    )


def bind_actors(rule: Rule, principal: Principal, request: Any) -> None:
    """Actor fields must name the principal (compared normalized) and are filled when
    empty; namespaced fields are put under the principal's name."""
    me = principal.name
    for path, msg, name, value in _present(request, rule.actors):
        if not value:
            setattr(msg, name, me)
        elif normalize_identity(value) != normalize_identity(me):
            raise PermissionDenied(
                f"{path} names {value!r}, but the call is authenticated as {me!r}: "
                "an authenticated call acts only as its own principal",
                field=path, reason="IMPERSONATION",
            )
    for _path, msg, name, value in _present(request, rule.namespaced):
        if value != me and not value.startswith(me + "/"):
            setattr(msg, name, f"{me}/{value}" if value else me)
