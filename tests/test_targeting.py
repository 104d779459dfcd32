"""Targeting conditions: text form, validation naming the wrong part, semantic-version order
(semver.org 2.0 section 11), and the compiled matcher."""

from __future__ import annotations

import functools
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neural.mlops.v1 import targeting, targeting_pb2
from neural.mlops.v1.targeting import ConditionError

# --- a reference semver comparison, written from the spec's text, independent of ours ---


def _ref_cmp(a: str, b: str) -> int:
    """semver.org 2.0 item 11, step by step (with the module's missing-part = 0 rule)."""
    def split(v: str) -> tuple[list[int], list[str] | None]:
        v = v.split("+", 1)[0]
        core, _, pre = v.partition("-")
        nums = [int(x) for x in core.split(".")]
        nums += [0] * (3 - len(nums))
        return nums, (pre.split(".") if "-" in v else None)

    (na, pa), (nb, pb) = split(a), split(b)
    if na != nb:
        return -1 if na < nb else 1
    if pa is None or pb is None:
        return (pa is None) - (pb is None)
    for x, y in zip(pa, pb, strict=False):
        if x == y:
            continue
        if x.isdigit() and y.isdigit():
            return -1 if int(x) < int(y) else 1
        if x.isdigit() != y.isdigit():
            return -1 if x.isdigit() else 1
        return -1 if x < y else 1
    return (len(pa) > len(pb)) - (len(pa) < len(pb))


_num = st.integers(min_value=0, max_value=30).map(str)
_alnum = st.text(alphabet="abcXYZ-", min_size=1, max_size=4).filter(lambda s: not s.isdigit())
_ident = st.one_of(_num, _alnum)
_versions = st.builds(
    lambda core, pre, build: ".".join(core) + (("-" + ".".join(pre)) if pre else "")
    + (("+" + build) if build else ""),
    st.lists(_num, min_size=1, max_size=3),
    st.one_of(st.none(), st.lists(_ident, min_size=1, max_size=4)),
    st.one_of(st.none(), st.sampled_from(["build.1", "sha-abc", "0001"])),
)


def _key(v: str) -> targeting.VersionKey:
    k = targeting.version_key(v)
    assert k is not None, v
    return k


def test_semver_spec_example_chain_is_in_order() -> None:
    chain = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
             "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "2.0.0", "2.1.0", "2.1.1"]
    for lo, hi in itertools.pairwise(chain):
        assert _key(lo) < _key(hi), (lo, hi)


def test_missing_parts_are_zero_and_build_metadata_is_ignored() -> None:
    assert _key("4.2") == _key("4.2.0") == _key("v4.2.0+exp.sha.5114f85")
    assert _key("4") == _key("4.0.0")
    assert _key("4.10") > _key("4.9.9")


@pytest.mark.parametrize("bad", ["", "4.2.0.1", "01.2", "1.2.a", "1.0.0-", "1.0.0-01",
                                 "1.0.0-a..b", "1.0.0+", "1.0.0+a..b", "banana", "1.0.0-é"])
def test_non_versions_have_no_key(bad: str) -> None:
    assert targeting.version_key(bad) is None


@settings(max_examples=400, deadline=None)
@given(_versions, _versions)
def test_semver_order_agrees_with_the_spec_reference(a: str, b: str) -> None:
    ours = (_key(a) > _key(b)) - (_key(a) < _key(b))
    assert ours == _ref_cmp(a, b), (a, b)


@settings(max_examples=100, deadline=None)
@given(st.lists(_versions, min_size=2, max_size=12))
def test_sorting_by_key_matches_sorting_by_the_reference(vs: list[str]) -> None:
    by_ref = sorted(vs, key=functools.cmp_to_key(_ref_cmp))
    assert [_key(v) for v in sorted(vs, key=_key)] == [_key(v) for v in by_ref]


# --- text form ------------------------------------------------------------------------------

_attr = st.one_of(
    st.from_regex(r"x-[a-z0-9][a-z0-9_.-]{0,10}", fullmatch=True).filter(
        lambda s: not s.endswith("-bin")),
    st.from_regex(r"param\.[A-Za-z0-9_.-]{1,10}", fullmatch=True),
)
_value = st.text(min_size=1, max_size=12).filter(lambda s: "\x00" not in s)


@st.composite
def _conditions(draw: st.DrawFn) -> targeting_pb2.Condition:
    op = draw(st.sampled_from(list(targeting_pb2.Operator.values())[1:]))
    attr = draw(_attr)
    if op in (targeting.EXISTS, targeting.NOT_EXISTS):
        values: list[str] = []
    elif op in (targeting.IN, targeting.NOT_IN):
        values = draw(st.lists(_value, min_size=1, max_size=5))
    elif op in (targeting.EQ, targeting.NEQ):
        values = [draw(_value)]
    else:
        values = [draw(_versions)]
    return targeting_pb2.Condition(attribute=attr, op=op, values=values)


@settings(max_examples=400, deadline=None)
@given(_conditions())
def test_parse_format_round_trip(cond: targeting_pb2.Condition) -> None:
    text = targeting.format(cond)
    back = targeting.parse(text)
    assert back == cond, text
    assert targeting.format(back) == text


@pytest.mark.parametrize("text,canon", [
    ("x-country in [DE,FR]", "x-country in [DE, FR]"),
    ("  x-plan=enterprise ", "x-plan = enterprise"),
    ("x-app-version>=4.2", "x-app-version >= 4.2"),
    ('x-city = "New York"', 'x-city = "New York"'),
    ('x-q = "say \\"hi\\""', 'x-q = "say \\"hi\\""'),
    ("param.tier not   in [gold]", "param.tier not in [gold]"),
    ("x-beta exists", "x-beta exists"),
    ("x-beta not exists", "x-beta not exists"),
])
def test_canonical_text(text: str, canon: str) -> None:
    assert targeting.canonical([text]) == (canon,)


@pytest.mark.parametrize("text,field,words", [
    ("X-Country in [DE]", "targeting[0].attribute", "lower case"),
    ("x country = DE", "targeting[0].op", "unknown operator"),
    ("x-country ~ DE", "targeting[0].op", "unknown operator"),
    ("= DE", "targeting[0].attribute", "attribute"),
    ("x-country in DE", "targeting[0].values", "brackets"),
    ("x-country in []", "targeting[0].values", "at least one"),
    ("x-country in [DE FR]", "targeting[0].values", "commas"),
    ("x-country = ", "targeting[0].values", "exactly one"),
    ("x-app-version >= four", "targeting[0].values[0]", "semantic version"),
    ("x-beta exists yes", "targeting[0].values", "no values"),
    ('x-city = "New York', "targeting[0].values", "unterminated"),
    ("param. = 1", "targeting[0].attribute", "param.<name>"),
    ("x-key-bin exists", "targeting[0].attribute", "-bin"),
    ("", "targeting[0].attribute", "empty"),
])
def test_garbage_is_refused_naming_the_part(text: str, field: str, words: str) -> None:
    with pytest.raises(ConditionError) as err:
        targeting.canonical([text])
    assert err.value.field == field
    assert words in str(err.value)


def test_validate_names_the_index_of_the_wrong_condition() -> None:
    good = targeting.parse("x-plan = enterprise")
    bad = targeting_pb2.Condition(attribute="x-v", op=targeting.GTE, values=["4.2", "5"])
    with pytest.raises(ValueError, match=r"targeting\[1\]\.values"):
        targeting.validate([good, bad])
    unset = targeting_pb2.Condition(attribute="x-v")
    with pytest.raises(ConditionError) as err:
        targeting.validate([good, good, unset])
    assert err.value.field == "targeting[2].op"
    with pytest.raises(ConditionError, match="more than 20"):
        targeting.validate([good] * 21)


# --- the matcher ----------------------------------------------------------------------------


def _m(*texts: str) -> targeting.Matcher:
    return targeting.compile_texts(texts)


def test_no_condition_is_the_always_fast_path() -> None:
    m = targeting.compile([])
    assert m.always and m.checks == () and m is targeting.ALWAYS
    assert not _m("x-a exists").always


@pytest.mark.parametrize("text,present,absent", [
    ("x-c = DE", {"DE"}, {"de", "FR", ""}),
    ("x-c != DE", {"FR", ""}, {"DE"}),
    ("x-c in [DE, FR]", {"DE", "FR"}, {"IT", "de"}),
    ("x-c not in [DE, FR]", {"IT"}, {"DE", "FR"}),
    ("x-v > 4.2", {"4.2.1", "4.2.1-rc.1", "v4.3"}, {"4.2", "4.2.0", "4.2.0-rc.1", "bad"}),
    ("x-v >= 4.2", {"4.2", "4.2.0", "4.2.0+b", "10.0"}, {"4.2.0-rc.1", "4.1.99", "x"}),
    ("x-v < 4.2", {"4.1.9", "4.2.0-alpha"}, {"4.2", "4.2.1", "nope"}),
    ("x-v <= 4.2", {"4.2.0", "1"}, {"4.2.1", ""}),
    ("x-c exists", {"", "anything"}, set()),
])
def test_each_operator(text: str, present: set[str], absent: set[str]) -> None:
    m = _m(text)
    attr = targeting.parse(text).attribute
    for v in present:
        assert m.matches({attr: v}.get), (text, v)
    for v in absent:
        assert not m.matches({attr: v}.get), (text, v)


def test_versions_with_numbers_of_any_length_compare_as_numbers() -> None:
    """A request's attribute may carry a number past int()'s 4300-digit limit: it still
    compares by value (no error for the caller, TARGETING.md), in linear time."""
    huge = "9" * 5000
    assert _key(huge) > _key("4.2") and _key("1" + "0" * 5000) > _key(huge)
    assert _key("4." + huge) < _key("5") and _key("1.0.0-" + huge) < _key("1.0.0-a")
    m = _m("x-v >= 4.2")
    assert m.matches({"x-v": huge}.get) and not m.matches({"x-v": "0." + huge}.get)


def test_an_absent_attribute_matches_only_not_exists() -> None:
    for text in ["x-c = DE", "x-c != DE", "x-c in [DE]", "x-c not in [DE]", "x-c >= 1",
                 "x-c <= 1", "x-c exists"]:
        assert not _m(text).matches({}.get), text
    assert _m("x-c not exists").matches({}.get)
    assert not _m("x-c not exists").matches({"x-c": "1"}.get)


def test_conditions_are_anded() -> None:
    m = _m("x-country in [DE, FR]", "x-plan = enterprise", "x-app-version >= 4.2")
    ok = {"x-country": "DE", "x-plan": "enterprise", "x-app-version": "4.2.0"}
    assert m.matches(ok.get)
    for k, v in [("x-country", "IT"), ("x-plan", "free"), ("x-app-version", "4.1")]:
        assert not m.matches({**ok, k: v}.get), k
    assert m.attributes == {"x-country", "x-plan", "x-app-version"}
    assert not m.reads_params and _m("param.tier exists").reads_params


# --- conditions as the control plane receives them -------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.one_of(_attr, st.text(max_size=20)), st.integers(min_value=0, max_value=12),
       st.lists(st.one_of(_value, st.text(max_size=8), _versions), max_size=4))
def test_any_wire_condition_is_refused_by_name_or_stored_canonically(
        attribute: str, op: int, values: list[str]) -> None:
    from neural.mlops.server.deployments.model import DeploymentStrategy
    from neural.mlops.server.deployments.planning import targeting_of
    from neural.mlops.server.errors import InvalidArgument

    cond = targeting_pb2.Condition(attribute=attribute, op=op, values=values)  # type: ignore[arg-type]
    try:
        [text] = targeting_of([cond], DeploymentStrategy.CANARY)
    except InvalidArgument as err:
        assert err.field is not None and err.field.startswith("targeting[0]")
        return
    assert targeting.parse(text) == cond  # what is stored reads back as what was sent
