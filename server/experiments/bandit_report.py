"""The bandit part of a test's analysis: P(best) now, the regret estimate, the weight
history, and what the frequentist part of the report is worth under adaptive allocation.

Decision (docs/ab_testing.md, "Multi-armed bandits"): a bandit test's report keeps the
usual frequentist sections for reference, but they are flagged as not valid
(``bandit.frequentist_valid`` is false, a warning says why, and AnalyzeTest leaves its typed
``p_value`` and ``statistically_significant`` unset/false): the z- and t-tests, the mSPRT
and the sample-ratio check all assume that each unit's arm was drawn with fixed
probabilities, which a bandit breaks on purpose (the allocation depends on earlier
outcomes, so the arms' sample sizes are random and correlated with the observed means;
Kaufmann, Cappé & Garivier 2016; Hadad et al., PNAS 2021). The recommendation comes from
P(arm is best) instead: ship the arm whose probability reaches the confidence level.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from neural.mlops.server.experiments.bandit import (
    BanditConfig,
    arm_data,
    burn_in_left,
    regret,
    reweight,
)
from neural.mlops.server.experiments.bandit_store import HistoryEntry
from neural.mlops.server.experiments.model import ABTest
from neural.mlops.server.experiments.report import Action, AnalysisReport, Recommendation
from neural.mlops.v1.traffic import VariantStats

FREQUENTIST_WARNING = (
    "multi-armed bandit: traffic was allocated adaptively, so the p-values, confidence "
    "intervals and the sample-ratio check of this report are not valid (they assume fixed "
    "weights); decide on bandit.p_best"
)
REGRET_ESTIMATOR = (
    "plug-in: sum over arms of observations * (best posterior mean - arm posterior mean)"
)


@dataclass(frozen=True, slots=True)
class BanditReport:
    config: BanditConfig
    weights: dict[str, float]  # the weights sidecars use now
    p_best: dict[str, float]  # now, from the current totals
    posterior_means: dict[str, float]
    observations: dict[str, int]
    burn_in: str  # why the burn-in is not over ("" when it is)
    expected_regret: float
    posterior_expected_regret: float  # sum of N_arm * E[best - arm] over the posterior
    history: list[HistoryEntry]

    def to_dict(self) -> dict[str, Any]:
        best = max(self.posterior_means.values(), default=0.0)
        if self.config.minimize:
            best = min(self.posterior_means.values(), default=0.0)
        return {
            "config": self.config.to_dict(),
            "weights": dict(self.weights),
            "p_best": dict(self.p_best),
            "posterior_means": dict(self.posterior_means),
            "observations": dict(self.observations),
            "burn_in_complete": not self.burn_in,
            "burn_in": self.burn_in or None,
            "regret": {
                "estimator": REGRET_ESTIMATOR,
                "expected_cumulative_regret": self.expected_regret,
                "posterior_expected_regret": self.posterior_expected_regret,
                "history": [{"sequence": h.sequence, "at": h.at.isoformat(),
                             "regret": regret(h.observations, self.posterior_means,
                                              minimize=self.config.minimize)}
                            for h in self.history],
                "best_posterior_mean": best,
            },
            "reweightings": len(self.history),
            "weight_history": [h.to_dict() for h in self.history],
            "frequentist_valid": False,
            "note": FREQUENTIST_WARNING,
        }


def build(test: ABTest, config: BanditConfig, totals: Mapping[str, VariantStats],
          history: Sequence[HistoryEntry]) -> BanditReport:
    """The bandit section from the test's current totals (draws seeded with sequence 0;
    the reweightings use 1, 2, ...)."""
    arms = {x.name: arm_data(config, totals.get(x.name, VariantStats())) for x in test.variants}
    now = reweight(config, arms, 0)
    gap = sum(now.observations[a] * now.expected_gap[a] for a in arms)
    return BanditReport(
        config=config,
        weights=test.weights,
        p_best=now.p_best,
        posterior_means=now.means,
        observations=now.observations,
        burn_in=burn_in_left(config, now.observations, test.running_seconds),
        expected_regret=regret(now.observations, now.means, minimize=config.minimize),
        posterior_expected_regret=gap,
        history=list(history),
    )


def judged(report: AnalysisReport, bandit: BanditReport,
           confidence_level: float) -> AnalysisReport:
    """The report with the bandit's warning and its recommendation from P(best): a
    guardrail's stop stays; the sample-ratio check's does not apply (the weights move)."""
    warnings = [*report.warnings, FREQUENTIST_WARNING]
    if any(g.violated for g in report.guardrail_checks):
        return replace(report, warnings=warnings)
    best, p = max(bandit.p_best.items(), key=lambda kv: kv[1])
    if bandit.burn_in:
        rec = Recommendation(Action.KEEP_RUNNING, None, bandit.burn_in)
    elif p < confidence_level:
        rec = Recommendation(
            Action.KEEP_RUNNING, None,
            f"no arm is best with probability {confidence_level:g} yet "
            f"(most likely: {best}, P(best) = {p:.3f})")
    else:
        action = Action.KEEP_CONTROL if best == report.control_variant else Action.SHIP_TREATMENT
        rec = Recommendation(action, best, f"{best} is best with probability {p:.3f} "
                                           f">= {confidence_level:g}")
    return replace(report, warnings=warnings, recommendation=rec)
