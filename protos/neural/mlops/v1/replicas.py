"""Several control-plane replicas behind one gRPC channel, with gRPC's own failover.

A client (the sidecar, the Python API, the CLI) may name several control planes:
``a:1,b:2,c:3`` (``grpc://a:1,b:2`` as a location). :func:`channel_target` turns the list
into one channel that gRPC itself spreads and fails over:

* the target is the static resolver's ``ipv4:``/``ipv6:`` list, one subchannel per
  address, under the ``round_robin`` policy: a call goes to a replica whose connection is
  ready, so a replica that is down (connection refused, reset, killed) is skipped while
  gRPC reconnects to it in the background;
* gRPC's static resolvers take IP literals only, and its ``dns:`` resolver one name, so
  a host name in the list is resolved once here, when the channel is opened (all its
  addresses join the list). For replicas that move, use one DNS name with an address
  record per replica instead (``grpc://replicas.internal:50051``): gRPC re-resolves it;
* a replica that went away is reconnected every second at most (:data:`RECONNECT`; gRPC's
  own backoff grows to two minutes), so a restarted replica serves again at once;
* the retry rule is gRPC's, from the channel's service config. A read (:data:`READS`:
  no side effect, so running it twice is harmless) is retried on another replica on
  ``UNAVAILABLE``, up to :data:`MAX_ATTEMPTS` attempts, until its first answer arrived.
  A write is retried only when gRPC knows it never reached a server (its transparent
  retry: the connection was refused or closed before the call was sent); otherwise its
  ``UNAVAILABLE`` reaches the caller, who cannot know whether it was applied.

With TLS every replica must present a certificate valid for the *first* address's host
(the channel has one authority): a shared name in each certificate's SANs.

One address keeps today's plain channel (its own name, no retry policy).
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Sequence
from typing import Any

from neural.mlops.v1.upstream import parse_upstream

__all__ = ["MAX_ATTEMPTS", "READS", "channel_target", "split_addresses"]

MAX_ATTEMPTS = 4

# How soon a replica that went away is tried again. gRPC's default backoff grows to 120 s,
# so after a few restarts every replica of a list could sit out a long backoff while up,
# and each call would fail at once with "connections to all backends failing". A restarted
# replica rejoins within about a second instead (a refused connect on a LAN is cheap).
RECONNECT = {
    "grpc.initial_reconnect_backoff_ms": 250,
    "grpc.min_reconnect_backoff_ms": 250,
    "grpc.max_reconnect_backoff_ms": 1000,
}

# Methods without side effects, by service: safe to run again on another replica.
READS: dict[str, tuple[str, ...]] = {
    "neural.mlops.v1.RegistryService": (
        "GetModelVersion", "ListModels", "ListVersions", "GetLatestVersions",
        "SearchModelVersions", "ListPendingApprovals", "GetHistory", "CompareModels",
        "DownloadArtifact",
    ),
    "neural.mlops.v1.DeploymentService": (
        "GetDeployment", "ListDeployments", "ListDeploymentEvents", "WatchDeployment",
        "GetShadow", "ListShadows", "CompareShadow",
    ),
    "neural.mlops.v1.ExperimentService": ("GetTest", "ListTests"),
    "neural.mlops.v1.AuditService": (
        "QueryEvents", "GetReport", "ListReports", "ListCheckpoints", "GetPublicKey",
    ),
    "neural.mlops.v1.AuthService": ("ListTokens", "ListGrants", "WhoAmI", "ListRoles"),
    "neural.mlops.v1.RoutingService": ("WatchRoutes", "GetRoutingTable"),
    "grpc.health.v1.Health": ("Check",),
}


def split_addresses(text: str) -> list[str]:
    """``HOST:PORT`` entries of a comma list, each checked; ValueError naming a bad one."""
    entries = [e.strip() for e in text.split(",")]
    if not entries or not all(entries):
        raise ValueError(f"expected HOST:PORT[,HOST:PORT...], got {text!r}")
    out = []
    for entry in entries:
        try:
            parse_upstream(entry)
        except ValueError as exc:
            raise ValueError(f"{entry!r} {exc}") from None
        out.append(entry)
    return out


def service_config() -> str:
    """round_robin over the replicas, reads retried on UNAVAILABLE."""
    return json.dumps({
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [{
            "name": [{"service": s, "method": m} for s, methods in READS.items()
                     for m in methods],
            "retryPolicy": {
                "maxAttempts": MAX_ATTEMPTS,
                "initialBackoff": "0.1s",
                "maxBackoff": "1s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }],
    })


def _ips(entry: str) -> tuple[list[str], list[str]]:
    """The IPv4 and IPv6 ``HOST:PORT`` forms an entry stands for (a name resolved now)."""
    host, _, port = entry.rpartition(":")
    host = host.strip("[]")
    try:
        ip = ipaddress.ip_address(host)
        literal = [str(ip)]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise ValueError(f"{entry!r}: cannot resolve {host}: {exc.strerror}") from None
        literal = list(dict.fromkeys(str(info[4][0]) for info in infos))
    v4 = [f"{a}:{port}" for a in literal if ipaddress.ip_address(a).version == 4]
    v6 = [f"[{a}]:{port}" for a in literal if ipaddress.ip_address(a).version == 6]
    return v4, v6


def channel_target(addresses: Sequence[str],
                   options: Sequence[tuple[str, Any]] = ()) -> tuple[str, list[tuple[str, Any]]]:
    """The gRPC target and channel options for ``addresses`` (``options`` kept, except
    those this sets)."""
    if len(addresses) == 1:
        return addresses[0], list(options)
    resolved = [_ips(a) for a in addresses]
    if all(v4 for v4, _ in resolved):
        target = "ipv4:" + ",".join(dict.fromkeys(a for v4, _ in resolved for a in v4))
    elif all(v6 for _, v6 in resolved):
        target = "ipv6:" + ",".join(dict.fromkeys(a for _, v6 in resolved for a in v6))
    else:
        raise ValueError(f"{','.join(addresses)}: one channel needs every address in one "
                         "family (all with an IPv4 or all with an IPv6 address)")
    ours = {"grpc.service_config": service_config(), "grpc.enable_retries": 1,
            "grpc.default_authority": addresses[0], **RECONNECT}
    return target, [*(o for o in options if o[0] not in ours), *ours.items()]
