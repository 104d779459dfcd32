"""``neural-mlops deploy create`` with targeting, header routes and custom-metric rules, and
the rules' text form."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import structlog

from neural.mlops.cli import main
from neural.mlops.server.deployments.custom_metrics import parse_rule, rule_text
from neural.mlops.server.deployments.model import MetricDirection, MetricKind, MetricRule
from neural.mlops.server.errors import InvalidArgument
from neural.mlops.server.logging import configure_logging


@pytest.fixture(scope="module", autouse=True)
def _logging_outside_capsys() -> None:
    if not structlog.is_configured():
        configure_logging("warning")


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_create_with_targeting_header_route_and_metric_rules(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = str(tmp_path / "d")
    base = ("deploy", "create", "fraud", "v2", "--target", target, "--created-by", "ops@x.com")
    code, out, _ = _run(
        capsys, *base, "--targeting", "x-country in [DE,FR]", "--targeting",
        "x-app-version >= 4.2", "--header-route", "x-canary=always:canary",
        "--metric-rule", "latency_ms <= 120 min=50",
        "--metric-rule", "accuracy higher vs stable max-degradation=0.02 alpha=0.01", "--json")
    assert code == 0
    dep = json.loads(out)
    assert dep["targeting"] == ["x-country in [DE, FR]", "x-app-version >= 4.2"]
    assert dep["header_routes"] == [["x-canary", "always", "canary"]]
    rules = dep["rollback_config"]["metric_rules"]
    assert [(r["metric"], r["kind"], r["direction"]) for r in rules] == [
        ("latency_ms", "threshold", "lower"), ("accuracy", "comparison", "higher")]
    assert rules[0]["threshold"] == 120 and rules[0]["min_samples"] == 50
    assert rules[1]["max_degradation"] == 0.02 and rules[1]["alpha"] == 0.01
    code, out, _ = _run(capsys, "deploy", "status", dep["deployment_id"], "--target", target)
    assert code == 0
    assert "x-country in [DE, FR] AND x-app-version >= 4.2" in out
    assert "x-canary: always -> canary" in out and "latency_ms <= 120 min=50" in out


@pytest.mark.parametrize("flag,value,words", [
    ("--targeting", "X-Country in [DE]", "targeting[0].attribute"),
    ("--targeting", "x-v >= soon", "targeting[0].values[0]"),
    ("--header-route", "x-canary", "HEADER=VALUE:VARIANT"),
    ("--header-route", "x-canary=always:green", "header_routes[0].variant"),
    ("--metric-rule", "accuracy ~ 3", "is not 'NAME <= X'"),
    ("--metric-rule", "latency <= 1 alpha=0.1", "apply to comparisons"),
    ("--metric-rule", "Latency <= 1", "rollback_config.metric_rules[0].metric"),
])
def test_bad_flags_exit_2_naming_the_part(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          flag: str, value: str, words: str) -> None:
    code, _, err = _run(capsys, "deploy", "create", "fraud", "v2", "--target",
                        str(tmp_path / "d"), "--created-by", "ops@x.com", flag, value)
    assert code == 2 and words in err


@pytest.mark.parametrize("rule", [
    MetricRule("latency_ms", MetricKind.THRESHOLD, MetricDirection.LOWER, threshold=120.5),
    MetricRule("acc", MetricKind.THRESHOLD, MetricDirection.HIGHER, threshold=0.9,
               min_samples=10),
    MetricRule("acc", MetricKind.COMPARISON, MetricDirection.HIGHER, max_degradation=0.02,
               alpha=0.01, min_samples=300),
    MetricRule("cost", MetricKind.COMPARISON, MetricDirection.LOWER),
])
def test_rule_text_round_trip(rule: MetricRule) -> None:
    assert parse_rule(rule_text(rule)) == rule


def test_rule_text_refuses_a_fractional_sample_size() -> None:
    with pytest.raises(InvalidArgument, match="min must be an integer"):
        parse_rule("x <= 1 min=2.5")
