"""Targeting conditions: the text form, validation, and the compiled matcher.

Semantics are in ``targeting.proto``. This module is the reference implementation shared
by the control plane (validation, canonical storage form) and the sidecar (evaluation on
the hot path). Pure standard library.

Text form (one condition), tokens separated by blanks::

    x-country in [DE, FR]          x-country not in [DE, FR]
    x-plan = enterprise            x-plan != free
    x-app-version >= 4.2           (also >, <, <=; semantic versions)
    param.tier exists              param.tier not exists

A value is bare when it is made of letters, digits and ``._:/@+-*`` only, otherwise
double-quoted with ``\\"`` and ``\\\\`` escapes (``x-city = "New York"``). :func:`format`
writes the canonical text: what the store keeps and every listing shows, and
``format(parse(format(c))) == format(c)``.

API: :func:`parse` (text -> Condition), :func:`format` (Condition -> text),
:func:`validate` (raises ``ValueError`` naming the wrong part, as ``targeting[i].values``
and the like: :class:`ConditionError` carries ``field``), :func:`compile` -> :class:`Matcher`
with ``always`` (no condition: callers skip evaluation entirely) and ``matches(get)`` where
``get(attribute)`` returns the request's value or None. :func:`version_key` gives the
semantic-version sort key.

Semantic versions (semver.org 2.0, section 11): ``MAJOR[.MINOR[.PATCH]][-PRERELEASE]
[+BUILD]``, missing parts are 0 (``4.2 == 4.2.0``), a leading ``v`` is accepted, build
metadata is ignored. Precedence: core numbers numerically; a pre-release sorts before its
release; pre-release identifiers compare left to right, numeric ones numerically and
below alphanumeric ones (ASCII order), and a longer list wins when all shared ones are
equal.
"""

from __future__ import annotations

import builtins
import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from neural.mlops.v1 import targeting_pb2

Condition = targeting_pb2.Condition
Getter = Callable[[str], "str | None"]

MAX_CONDITIONS = 20
MAX_VALUES = 100
MAX_VALUE_CHARS = 256
MAX_ATTRIBUTE_CHARS = 128
PARAM_PREFIX = "param."

EQ = targeting_pb2.OPERATOR_EQ
NEQ = targeting_pb2.OPERATOR_NEQ
IN = targeting_pb2.OPERATOR_IN
NOT_IN = targeting_pb2.OPERATOR_NOT_IN
GT = targeting_pb2.OPERATOR_VERSION_GT
GTE = targeting_pb2.OPERATOR_VERSION_GTE
LT = targeting_pb2.OPERATOR_VERSION_LT
LTE = targeting_pb2.OPERATOR_VERSION_LTE
EXISTS = targeting_pb2.OPERATOR_EXISTS
NOT_EXISTS = targeting_pb2.OPERATOR_NOT_EXISTS

_SYMBOLS = {EQ: "=", NEQ: "!=", GT: ">", GTE: ">=", LT: "<", LTE: "<="}
_BY_SYMBOL = {s: op for op, s in _SYMBOLS.items()}
_VERSION_OPS = frozenset((GT, GTE, LT, LTE))
_ONE_VALUE = frozenset((EQ, NEQ)) | _VERSION_OPS
_NO_VALUE = frozenset((EXISTS, NOT_EXISTS))
_LISTS = frozenset((IN, NOT_IN))

_BARE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:/@+-*")
_HEADER_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")
_PARAM_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
_IDENT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")


class ConditionError(ValueError):
    """A condition that is not acceptable; ``field`` names the part (``targeting[1].values``
    when :func:`validate` was given the field name ``targeting``)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.detail = message


# --- semantic versions --------------------------------------------------------------------

# A numeric identifier as (digit count, digits): without leading zeros that orders as the
# number does, for any length, in time linear in the text (int() refuses texts of more
# than 4300 digits, and a request's attribute may be that long).
Number = tuple[int, str]
VersionKey = tuple[Number, Number, Number, tuple[tuple[int, Number, str], ...]]
_ZERO: Number = (1, "0")
_RELEASE = ((2, _ZERO, ""),)  # sorts after any pre-release identifier list


def _number(part: str) -> Number | None:
    if not part or not part.isdigit() or not part.isascii():
        return None
    if len(part) > 1 and part[0] == "0":
        return None
    return len(part), part


def _prerelease(text: str) -> tuple[tuple[int, Number, str], ...] | None:
    out = []
    for ident in text.split("."):
        if not ident or not set(ident) <= _IDENT_CHARS:
            return None
        if ident.isdigit():
            n = _number(ident)
            if n is None:
                return None
            out.append((0, n, ""))
        else:
            out.append((1, _ZERO, ident))
    return tuple(out)


def version_key(text: str) -> VersionKey | None:
    """The precedence key of a semantic version (module docstring), None if ``text`` is not
    one. Keys compare with ``<`` as the versions' precedence; equal keys = equal precedence.
    Short texts go through a bounded cache: the versions requests carry are few, and a hit
    costs a lookup (long ones, which no app version is, are parsed each time)."""
    return _cached_key(text) if len(text) <= 64 else _version_key(text)


def _version_key(text: str) -> VersionKey | None:
    if text[:1] in ("v", "V"):
        text = text[1:]
    core, plus, build = text.partition("+")
    if plus and not all(p and set(p) <= _IDENT_CHARS for p in build.split(".")):
        return None
    core, dash, pre = core.partition("-")
    parts = core.split(".")
    if len(parts) > 3:
        return None
    nums = [_number(p) for p in parts]
    if any(n is None for n in nums):
        return None
    major, minor, patch = ([n for n in nums if n is not None] + [_ZERO, _ZERO])[:3]
    if not dash:
        return major, minor, patch, _RELEASE
    idents = _prerelease(pre)
    if idents is None:
        return None
    return major, minor, patch, idents


_cached_key = functools.lru_cache(maxsize=4096)(_version_key)


# --- text form ----------------------------------------------------------------------------

def _quote(value: str) -> str:
    if value and set(value) <= _BARE:
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format(cond: Condition) -> str:  # noqa: A001 - the interface's name
    """The canonical text of one condition (module docstring)."""
    op = cond.op
    if op in _SYMBOLS:
        return f"{cond.attribute} {_SYMBOLS[op]} {_quote(cond.values[0] if cond.values else '')}"
    if op in _LISTS:
        word = "in" if op == IN else "not in"
        return f"{cond.attribute} {word} [{', '.join(_quote(v) for v in cond.values)}]"
    if op in _NO_VALUE:
        return f"{cond.attribute} {'exists' if op == EXISTS else 'not exists'}"
    raise ConditionError("the operator is not set", "op")


def _tokens(text: str) -> list[str]:
    """Words, symbols, ``[``, ``]``, ``,`` and quoted strings (kept with a leading ``"``)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c in "[],":
            out.append(c)
            i += 1
        elif c == '"':
            i = _quoted(text, i, out)
        elif c in "=!<>":
            j = i + 1
            while j < n and text[j] in "=!<>":
                j += 1
            out.append(text[i:j])
            i = j
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in '[],"=!<>':
                j += 1
            out.append(text[i:j])
            i = j
    return out


def _quoted(text: str, i: int, out: list[str]) -> int:
    buf = ['"']
    j = i + 1
    while j < len(text):
        c = text[j]
        if c == "\\" and j + 1 < len(text):
            buf.append(text[j + 1])
            j += 2
            continue
        if c == '"':
            out.append("".join(buf))
            return j + 1
        buf.append(c)
        j += 1
    raise ConditionError(f"unterminated quoted value in {text!r}", "values")


def _value(tok: str) -> str:
    if tok.startswith('"'):
        return tok[1:]
    if tok in ("[", "]", ","):
        raise ConditionError(f"a value was expected, not {tok!r}", "values")
    return tok


def _list(toks: list[str], text: str) -> list[str]:
    if not toks or toks[0] != "[" or toks[-1] != "]":
        raise ConditionError(f"a list in brackets was expected: {text!r}", "values")
    inner = toks[1:-1]
    values = [_value(t) for t in inner[0::2]]
    if any(t != "," for t in inner[1::2]) or (inner and inner[-1] == ","):
        raise ConditionError(f"list values are separated by commas: {text!r}", "values")
    return values


def parse(text: str) -> Condition:
    """The condition written as ``text`` (module docstring). Raises :class:`ConditionError`
    naming the part that is wrong; the result is also checked with :func:`validate`."""
    toks = _tokens(text)
    if not toks:
        raise ConditionError("empty condition", "attribute")
    attribute, rest = toks[0], toks[1:]
    if attribute.startswith('"') or attribute[0] in "[],=!<>":
        raise ConditionError(f"an attribute name was expected first: {text!r}", "attribute")
    if not rest:
        raise ConditionError(f"an operator was expected after {attribute!r}", "op")
    head = rest[0]
    if head in _BY_SYMBOL:
        if len(rest) != 2:
            raise ConditionError(f"{head} takes exactly one value: {text!r}", "values")
        cond = Condition(attribute=attribute, op=_BY_SYMBOL[head], values=[_value(rest[1])])
    elif head == "in":
        cond = Condition(attribute=attribute, op=IN, values=_list(rest[1:], text))
    elif head == "not" and len(rest) > 1 and rest[1] == "in":
        cond = Condition(attribute=attribute, op=NOT_IN, values=_list(rest[2:], text))
    elif rest == ["exists"]:
        cond = Condition(attribute=attribute, op=EXISTS)
    elif rest == ["not", "exists"]:
        cond = Condition(attribute=attribute, op=NOT_EXISTS)
    elif head == "exists" or rest[:2] == ["not", "exists"]:
        raise ConditionError(f"exists / not exists take no values: {text!r}", "values")
    else:
        raise ConditionError(
            f"unknown operator {head!r} (=, !=, in, not in, >, >=, <, <=, exists, "
            "not exists)", "op")
    validate([cond], field="")
    return cond


# --- validation ---------------------------------------------------------------------------

def _check_attribute(attr: str, where: str) -> None:
    field = f"{where}attribute"
    if not attr:
        raise ConditionError("the attribute is required", field)
    if len(attr) > MAX_ATTRIBUTE_CHARS:
        raise ConditionError(f"longer than {MAX_ATTRIBUTE_CHARS} characters", field)
    if attr.startswith(PARAM_PREFIX):
        name = attr[len(PARAM_PREFIX):]
        if not name or not set(name) <= _PARAM_CHARS:
            raise ConditionError(
                f"{attr!r}: a parameter is param.<name> with letters, digits, '-', '_', '.'",
                field)
        return
    if attr != attr.lower() and set(attr.lower()) <= _HEADER_CHARS:
        raise ConditionError(f"{attr!r}: header names are lower case ({attr.lower()!r})", field)
    if not set(attr) <= _HEADER_CHARS:
        raise ConditionError(
            f"{attr!r} is neither a header name (lower case letters, digits, '-', '_', '.') "
            "nor param.<name>", field)
    if attr.endswith("-bin"):
        raise ConditionError(f"{attr!r}: binary (-bin) headers cannot be compared", field)


def _check_values(cond: Condition, where: str) -> None:
    field = f"{where}values"
    op, values = cond.op, cond.values
    if op in _NO_VALUE and values:
        raise ConditionError(f"{format(cond)!r} takes no values", field)
    if op in _ONE_VALUE and len(values) != 1:
        raise ConditionError(f"{_SYMBOLS[op]} takes exactly one value, not {len(values)}",
                             field)
    if op in _LISTS and not values:
        raise ConditionError("in / not in need at least one value", field)
    if len(values) > MAX_VALUES:
        raise ConditionError(f"more than {MAX_VALUES} values", field)
    for j, v in enumerate(values):
        if len(v) > MAX_VALUE_CHARS:
            raise ConditionError(f"longer than {MAX_VALUE_CHARS} characters", f"{field}[{j}]")
        if op in _VERSION_OPS and version_key(v) is None:
            raise ConditionError(
                f"{v!r} is not a semantic version (MAJOR[.MINOR[.PATCH]][-PRERELEASE])",
                f"{field}[{j}]")


def validate(conds: Iterable[Condition], field: str = "targeting") -> None:
    """Raise :class:`ConditionError` (a ValueError) for the first wrong part, its ``field``
    being ``<field>[i].attribute`` / ``.op`` / ``.values[j]`` (``field=""`` for one
    condition on its own: ``attribute``, ``op``, ``values``)."""
    conds = list(conds)
    if len(conds) > MAX_CONDITIONS:
        raise ConditionError(f"more than {MAX_CONDITIONS} conditions", field or "targeting")
    for i, cond in enumerate(conds):
        where = f"{field}[{i}]." if field else ""
        _check_attribute(cond.attribute, where)
        if cond.op not in targeting_pb2.Operator.values() or cond.op == 0:
            raise ConditionError(f"unknown operator {cond.op}", f"{where}op")
        _check_values(cond, where)


def canonical(texts: Sequence[str], field: str = "targeting") -> tuple[str, ...]:
    """The canonical texts of conditions given as text (the storage form); errors name
    ``<field>[i]`` and the part."""
    out = []
    for i, text in enumerate(texts):
        try:
            out.append(format(parse(text)))
        except ConditionError as exc:
            raise ConditionError(exc.detail, f"{field}[{i}].{exc.field}") from None
    return tuple(out)


# --- the matcher --------------------------------------------------------------------------

Check = Callable[[Getter], bool]


def _check(cond: Condition) -> Check:
    attr, op, values = cond.attribute, cond.op, builtins.list(cond.values)
    if op == EXISTS:
        return lambda get: get(attr) is not None
    if op == NOT_EXISTS:
        return lambda get: get(attr) is None
    if op in (EQ, IN):
        allowed = frozenset(values)
        return lambda get: get(attr) in allowed
    if op in (NEQ, NOT_IN):
        refused = frozenset(values)

        def differs(get: Getter) -> bool:
            v = get(attr)
            return v is not None and v not in refused
        return differs
    return _version_check(attr, op, values[0])


def _version_check(attr: str, op: int, bound_text: str) -> Check:
    bound = version_key(bound_text)
    assert bound is not None  # validated
    compares: dict[int, Callable[[VersionKey], bool]] = {
        GT: bound.__lt__, GTE: bound.__le__, LT: bound.__gt__, LTE: bound.__ge__,
    }
    compare = compares[op]

    def versioned(get: Getter) -> bool:
        v = get(attr)
        if v is None:
            return False
        key = version_key(v)
        return key is not None and compare(key)
    return versioned


@dataclass(frozen=True, slots=True)
class Matcher:
    """Compiled conditions. ``always`` is True when there are none: callers test it first
    and skip evaluation (nothing is built per request). ``attributes`` lists what the
    conditions read (the sidecar parses OIP parameters only when one is ``param.*``)."""

    always: bool
    checks: tuple[Check, ...]
    attributes: frozenset[str]
    texts: tuple[str, ...]

    def matches(self, get: Getter) -> bool:
        for check in self.checks:
            if not check(get):
                return False
        return True

    @property
    def reads_params(self) -> bool:
        return any(a.startswith(PARAM_PREFIX) for a in self.attributes)


ALWAYS = Matcher(True, (), frozenset(), ())


def compile(conds: Iterable[Condition]) -> Matcher:  # noqa: A001 - the interface's name
    """The matcher of validated conditions (ANDed)."""
    conds = builtins.list(conds)
    if not conds:
        return ALWAYS
    validate(conds)
    return Matcher(False, tuple(_check(c) for c in conds),
                   frozenset(c.attribute for c in conds), tuple(format(c) for c in conds))


def compile_texts(texts: Sequence[str]) -> Matcher:
    """The matcher of conditions in their text form (the routing table's storage form)."""
    return compile(parse(t) for t in texts) if texts else ALWAYS
