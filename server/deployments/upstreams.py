"""Where a deployment's new version or a shadow is served: checked before it is stored.

Every sidecar that receives a route sends callers' tensors to its ``upstream`` (and, for a
serving variant, their headers), so an upstream is accepted only in the form
:func:`neural.mlops.v1.upstream.parse_upstream` defines (``HOST:PORT``, no ``unix:``
socket, scheme, user info or path) and stored canonical. ``serve --allowed-upstream``
narrows it to patterns; without any, a well-formed upstream is accepted and each sidecar's
own ``--allowed-upstream`` list is the limit (docs/deployments.md).
"""

from __future__ import annotations

from neural.mlops.server import validation as v
from neural.mlops.server.errors import InvalidArgument
from neural.mlops.v1.upstream import UpstreamAllowList, parse_upstream

UPSTREAM_LIMIT = 300


def check_upstream(value: object, field: str, allowed: UpstreamAllowList) -> str:
    """The canonical upstream ("" = the sidecar's own), or InvalidArgument naming ``field``."""
    text = v.text(value, field, limit=UPSTREAM_LIMIT)
    if not text:
        return ""
    try:
        address = parse_upstream(text)
    except ValueError as exc:
        raise InvalidArgument(f"{field} {exc}", field=field) from None
    if allowed and not allowed.allows(address):
        # The patterns are the operator's network layout: not repeated to the caller.
        raise InvalidArgument(
            f"{field} {address} is not among the upstreams this control plane allows "
            "(serve --allowed-upstream)",
            field=field,
        )
    return address
