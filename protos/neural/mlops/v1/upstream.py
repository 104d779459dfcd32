"""Upstream addresses in routing tables, and the allow-lists that admit them.

A deployment's or shadow's ``upstream`` names the model server a sidecar sends callers'
tensors (and, for a serving variant, their headers) to, so both ends check it with this
one module: the control plane when the deployment or shadow is created, and every
sidecar again when a routing table arrives (a control plane, a store or a table can be
wrong; the sidecar trusts its own flags).

An upstream is ``HOST:PORT`` and nothing else: a DNS name, an IPv4 literal in dotted-quad
form, or an IPv6 literal in brackets, and a port in 1-65535. No scheme (``unix:``,
``dns:``, ``http://``...), user info, path, whitespace or control characters.
:func:`parse_upstream` returns its canonical form (lower-case host, compressed IPv6, no
leading zeros), the one that allow-lists match: two spellings of one address cannot get
different answers.

An allow-list is a list of ``fnmatch`` patterns over that canonical ``HOST:PORT``: ``*``
and ``?`` are wildcards, ``[`` is taken literally (so ``[::1]:*`` matches the IPv6
loopback instead of starting a character class). ``10.0.0.*:*``, ``*.models.svc:8001``
and ``*:*`` (anything well formed) are patterns.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from fnmatch import fnmatchcase

__all__ = ["UpstreamAllowList", "check_pattern", "parse_upstream", "split_patterns"]

# Name schemes a gRPC target may start with: named in the error so a caller knows why.
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):(//)?", re.IGNORECASE)
_GRPC_SCHEMES = frozenset({"unix", "unix-abstract", "dns", "ipv4", "ipv6", "vsock", "xds"})
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_NUMERIC_LABEL = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")
_PATTERN = re.compile(r"^[a-z0-9._\-\[\]:*?]+$")
_MAX_HOST = 253
_SHOWN = 40  # characters of a refused value repeated in an error


def _shown(value: str) -> str:
    return repr(value if len(value) <= _SHOWN else value[:_SHOWN] + "...")


def _host(host: str) -> str:
    """The canonical host, or ValueError saying what is wrong with it."""
    if not host:
        raise ValueError("has no host")
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError("has an unclosed '[' (IPv6 literals are [ADDRESS])")
        try:
            return f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
        except ValueError:
            raise ValueError(f"has {_shown(host)}, which is not an IPv6 address") from None
    if ":" in host:
        raise ValueError("must put an IPv6 address in brackets: [ADDRESS]:PORT")
    host = host.lower()
    if all(ch.isdigit() or ch == "." for ch in host):
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            raise ValueError(
                f"has {_shown(host)}, which is not a dotted-quad IPv4 address"
            ) from None
    labels = host.split(".")
    if len(host) > _MAX_HOST or not all(_LABEL.match(label) for label in labels):
        raise ValueError(
            f"has {_shown(host)}, which is not a DNS name (letters, digits, "
            "'-' and '_' in dot-separated labels)"
        )
    if labels[-1].isdigit() or all(_NUMERIC_LABEL.match(label) for label in labels):
        # "0x7f.1", "0x7f000001" or "10.1": forms a resolver may read (inet_aton) as an
        # IPv4 address that no dotted-quad pattern would match.
        raise ValueError(f"has {_shown(host)}, which is neither a DNS name nor an IPv4 address")
    return host


def _port(port: str) -> int:
    if not port.isascii() or not port.isdigit():
        raise ValueError(f"has port {_shown(port)}; the port must be a number in 1-65535")
    if len(port) > 1 and port.startswith("0"):
        raise ValueError(f"has port {_shown(port)} with a leading zero")
    number = int(port) if len(port) <= 5 else 0
    if not 1 <= number <= 65535:
        raise ValueError(f"has port {_shown(port)}; the port must be in 1-65535")
    return number


def parse_upstream(value: str) -> str:
    """The canonical ``HOST:PORT`` of ``value``; ValueError with the reason otherwise (the
    message continues the field's name: ``"upstream " + str(exc)``)."""
    if not value:
        raise ValueError("is empty")
    if any(ch.isspace() or ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in value):
        raise ValueError("must not contain whitespace or control characters")
    if not value.isascii():
        raise ValueError("must be ASCII HOST:PORT (a non-ASCII name goes in its xn-- form)")
    scheme = _SCHEME.match(value)
    if scheme and (scheme.group(2) or scheme.group(1).lower() in _GRPC_SCHEMES):
        raise ValueError(
            f"must be HOST:PORT without a scheme; {scheme.group(0)!r} is not "
            "allowed (no unix: sockets, dns:, http:// ...)"
        )
    if "@" in value:
        raise ValueError("must not contain user info ('@')")
    if "/" in value or "\\" in value or "?" in value or "#" in value:
        raise ValueError("must be HOST:PORT without a path or query")
    host, sep, port = value.rpartition(":")
    if not sep:
        raise ValueError(f"must be HOST:PORT, got {_shown(value)} (no port)")
    return f"{_host(host)}:{_port(port)}"


def check_pattern(pattern: str) -> str:
    """A pattern of an allow-list, trimmed and lower-cased; ValueError if it can never
    match an upstream (it must have the form HOSTPATTERN:PORTPATTERN)."""
    p = pattern.strip().lower()
    if not p or not _PATTERN.match(p) or ":" not in p or p.endswith(":"):
        raise ValueError(
            f"allowed upstream pattern {_shown(pattern)} must be HOST:PORT with * or ? "
            "wildcards (e.g. 10.0.0.*:*, *.models.svc:8001, [::1]:*)"
        )
    return p


def split_patterns(values: Iterable[str] | str) -> tuple[str, ...]:
    """Patterns from flags, environment or a file: each item may be a comma list."""
    items = [values] if isinstance(values, str) else list(values)
    return tuple(check_pattern(p) for item in items for p in item.split(",") if p.strip())


class UpstreamAllowList:
    """Which upstreams may receive traffic. Empty: none (callers decide what that means)."""

    def __init__(self, patterns: Iterable[str] | str = ()) -> None:
        self.patterns = split_patterns(patterns)
        # '[' literal: fnmatch would read it as a character class.
        self._globs = tuple(p.replace("[", "[[]") for p in self.patterns)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def __repr__(self) -> str:
        return f"UpstreamAllowList({list(self.patterns)!r})"

    def allows(self, upstream: str) -> bool:
        """Whether ``upstream`` is well formed and its canonical form matches a pattern."""
        try:
            canonical = parse_upstream(upstream)
        except ValueError:
            return False
        return any(fnmatchcase(canonical, g) for g in self._globs)
