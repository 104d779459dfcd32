"""Benjamini-Hochberg beside Holm (per test), and the small settings: SRM threshold,
negative minimum detectable effect, the relative interval with zero successes."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from neural.mlops.server.errors import InvalidArgument
from neural.mlops.server.experiments import statistics
from neural.mlops.server.experiments.analysis import AnalysisConfig, analyze
from neural.mlops.server.experiments.spec import CreateSpec, validate_spec
from neural.mlops.v1.traffic import Moments, VariantStats


def test_benjamini_hochberg_matches_statsmodels_and_leaves_nan_alone():
    rng = np.random.default_rng(1)
    for m in (1, 2, 5, 40):
        p = rng.uniform(0, 0.2, size=m) ** 2
        for method, ref in (("benjamini_hochberg", "fdr_bh"), ("holm", "holm")):
            ours = statistics.adjust(p, method)
            assert np.allclose(ours, multipletests(p, method=ref)[1], rtol=1e-12, atol=0)
    p = np.array([0.01, np.nan, 0.04, 0.03])
    ours = statistics.benjamini_hochberg(p)
    assert np.isnan(ours[1])
    assert np.allclose(ours[[0, 2, 3]], multipletests(p[[0, 2, 3]], method="fdr_bh")[1])
    with pytest.raises(ValueError):
        statistics.adjust(p, "bonferroni")


def _arms(rates: dict[str, float], n: int = 4000) -> dict[str, VariantStats]:
    out = {}
    rng = np.random.default_rng(2)
    for name, r in rates.items():
        s = VariantStats(count=n, successes=int(r * n))
        s.custom["a"] = Moments.of(rng.normal(1.0 + r, 1.0, 300))
        s.custom["b"] = Moments.of(rng.normal(1.0, 1.0, 300))
        out[name] = s
    return out


@pytest.mark.parametrize(("setting", "ref"), [("holm", "holm"), ("benjamini_hochberg", "fdr_bh")])
def test_the_correction_is_chosen_per_test_across_variants_and_metrics(setting, ref):
    rates = {"control": 0.10, "v1": 0.11, "v2": 0.115, "v3": 0.10, "v4": 0.112}
    report = analyze([(n, 0.2) for n in rates], _arms(rates), control="control",
                     config=AnalysisConfig(multiple_testing=setting))
    names = [n for n in rates if n != "control"]
    raw = [report["comparisons"][n]["p_value"] for n in names]
    expected = multipletests(raw, method=ref)[1]
    got = [report["comparisons"][n]["p_value_adjusted"] for n in names]
    assert np.allclose(got, expected, rtol=1e-12)
    for n, adj in zip(names, expected, strict=True):
        assert report["comparisons"][n]["statistically_significant"] == bool(adj < 0.05)
    metrics = report["comparisons"]["v1"]["metrics"]
    assert np.allclose([metrics[k]["p_value_adjusted"] for k in ("a", "b")],
                       multipletests([metrics[k]["p_value"] for k in ("a", "b")], method=ref)[1])


def test_bh_finds_what_holm_misses():
    rates = {"control": 0.10, "v1": 0.1125, "v2": 0.113, "v3": 0.1135, "v4": 0.114}
    arms = _arms(rates, 6000)
    weights = [(n, 0.2) for n in rates]
    holm = analyze(weights, arms, control="control")
    bh = analyze(weights, arms, control="control",
                 config=AnalysisConfig(multiple_testing="benjamini_hochberg"))
    count = lambda r: sum(c["statistically_significant"] for c in r["comparisons"].values())  # noqa: E731
    assert count(bh) > count(holm)


def test_settings_are_validated():
    base = {"name": "t", "control_variant": "m:1", "treatment_variant": "m:2"}
    ok = validate_spec(CreateSpec(**base, multiple_testing="BH", minimum_detectable_effect=-0.05,
                                  srm_threshold=0.01, sequential_tuning=20_000, prior_sd=0.3))
    assert ok.multiple_testing == "benjamini_hochberg" and ok.minimum_detectable_effect == -0.05
    assert ok.sequential_tau == 0.0 and ok.sequential_tuning == 20_000
    for bad in ({"multiple_testing": "bonferroni"}, {"minimum_detectable_effect": 0.0},
                {"minimum_detectable_effect": -1.0}, {"srm_threshold": 0.0},
                {"sequential_tuning": 0.5}, {"prior_sd": -1.0}, {"sequential_tau": 2.0}):
        with pytest.raises(InvalidArgument) as err:
            validate_spec(CreateSpec(**base, **bad))
        assert err.value.field == next(iter(bad))


def test_a_negative_minimum_detectable_effect_plans_for_a_decrease():
    arms = {"control": VariantStats(count=1000, successes=200),
            "treatment": VariantStats(count=1000, successes=190)}
    down = analyze([("treatment", 0.5), ("control", 0.5)], arms, control="control",
                   config=AnalysisConfig(minimum_detectable_effect=-0.1))["power"]
    up = analyze([("treatment", 0.5), ("control", 0.5)], arms, control="control",
                 config=AnalysisConfig(minimum_detectable_effect=0.1))["power"]
    assert abs(down["target_rate"] - 0.18) < 1e-12 and down["effect_size_h"] < 0
    assert 0 < down["required_total"] < up["required_total"]  # 20% -> 18% is the larger h


def test_the_srm_threshold_is_a_setting():
    arms = {"control": VariantStats(count=10_000, successes=1000),
            "treatment": VariantStats(count=9_700, successes=970)}  # chi-square p ~ 0.03
    weights = [("treatment", 0.5), ("control", 0.5)]
    default = analyze(weights, arms, control="control")["srm"]
    strict = analyze(weights, arms, control="control",
                     config=AnalysisConfig(srm_threshold=0.05))
    assert not default["detected"] and default["threshold"] == 0.001
    assert strict["srm"]["detected"] and strict["srm"]["threshold"] == 0.05
    assert strict["recommendation"]["action"] == "stop"


def test_relative_interval_with_zero_treatment_successes_is_undefined_with_a_warning():
    arms = {"control": VariantStats(count=1000, successes=50),
            "treatment": VariantStats(count=1000, successes=0)}
    report = analyze([("treatment", 0.5), ("control", 0.5)], arms, control="control")
    assert report["improvement"]["relative_confidence_interval"] == [None, None]
    assert any("relative confidence interval" in w for w in report["warnings"])
