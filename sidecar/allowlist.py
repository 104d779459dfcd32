"""Which upstreams this sidecar sends callers' traffic to, whatever a routing table says.

The control plane validates upstreams too, but a table names addresses that every sidecar
will connect to with callers' tensors and headers, so each sidecar also holds its own list
(``--allowed-upstream``, fnmatch patterns over the canonical ``HOST:PORT`` of
:mod:`neural.mlops.v1.upstream`). Without patterns the list is the host of its own
``--upstream`` on any port: model servers beside the sidecar, nothing elsewhere. Its own
``--upstream`` is always allowed, as written.

A route variant whose upstream is refused is not served anywhere else (that would
silently answer with the wrong model): the route keeps what the previous table had for
that model, or, without one, the model stays unrouted (the sidecar's own upstream,
under the name the caller asked for). A refused shadow is not mirrored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

from neural.mlops.v1.upstream import UpstreamAllowList, parse_upstream

KEPT = "kept previous route"
UNROUTED = "not routed"
NOT_MIRRORED = "not mirrored"


def default_patterns(own_upstream: str) -> tuple[str, ...]:
    """The host of ``own_upstream`` on any port (none when it is no HOST:PORT: a socket)."""
    try:
        canonical = parse_upstream(own_upstream)
    except ValueError:
        return ()
    # A canonical host has no wildcard; '[' of an IPv6 literal is literal in allow-lists.
    return (f"{canonical.rsplit(':', 1)[0]}:*",)


class UpstreamPolicy:
    def __init__(self, own_upstream: str, patterns: Iterable[str] | str = ()) -> None:
        self.own = own_upstream
        allow = UpstreamAllowList(patterns)
        self.allow_list = allow if allow else UpstreamAllowList(default_patterns(own_upstream))

    @property
    def patterns(self) -> tuple[str, ...]:
        return self.allow_list.patterns

    def allows(self, upstream: str) -> bool:
        """``""`` (the sidecar's own upstream) and ``--upstream`` itself always are."""
        return not upstream or upstream == self.own or self.allow_list.allows(upstream)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A variant or shadow of a routing table not served because of its upstream."""

    model: str
    route_id: str
    kind: str  # "variant" or "shadow"
    name: str  # the variant's name or the shadow's id
    upstream: str
    outcome: str  # KEPT, UNROUTED or NOT_MIRRORED

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.model, self.route_id, self.kind, self.name)

    def to_dict(self) -> dict[str, str]:
        out = asdict(self)
        out["upstream"] = self.upstream[:120]  # a table's text: keep /healthz bounded
        return out
