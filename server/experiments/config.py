"""How an A/B test is judged: the decision rules and the analysis settings fixed at creation."""

from __future__ import annotations

from dataclasses import dataclass

from neural.mlops.server.experiments import sequential
from neural.mlops.server.experiments.statistics import BENJAMINI_HOCHBERG, CORRECTIONS, HOLM

DECISION_FIXED = "fixed_horizon"
DECISION_SEQUENTIAL = "sequential"
DECISION_RULES = (DECISION_FIXED, DECISION_SEQUENTIAL)

# Fabijan et al. (KDD 2019): a sample-ratio mismatch alarm at p < 0.001.
SRM_THRESHOLD = 0.001

__all__ = [
    "BENJAMINI_HOCHBERG",
    "CORRECTIONS",
    "DECISION_FIXED",
    "DECISION_RULES",
    "DECISION_SEQUENTIAL",
    "HOLM",
    "SRM_THRESHOLD",
    "AnalysisConfig",
]


@dataclass(frozen=True, slots=True)
class AnalysisConfig:
    """How a test is judged; fixed when the test is created.

    ``sequential_tau`` > 0 fixes the mSPRT mixing scale on the effect's own scale (tests
    created before the scaled mixture keep theirs); 0 scales it to the data with
    ``sequential_tuning`` (:class:`.sequential.Mixture`). ``prior_sd`` > 0 makes the
    Bayesian view use a proper N(``prior_mean``, ``prior_sd``^2) prior on the relative
    effect (0: flat). ``multiple_testing`` is :data:`HOLM` or :data:`BENJAMINI_HOCHBERG`,
    across variants and across a comparison's metrics.
    """

    confidence_level: float = 0.95
    minimum_detectable_effect: float = 0.05  # relative lift of the success rate (0.05 = 5%)
    power: float = 0.8
    decision_rule: str = DECISION_FIXED  # or DECISION_SEQUENTIAL
    sequential_tau: float = 0.0
    srm_threshold: float = SRM_THRESHOLD
    sequential_tuning: float = sequential.DEFAULT_TUNING
    multiple_testing: str = HOLM
    prior_mean: float = 0.0
    prior_sd: float = 0.0

    def mixture(self) -> sequential.Mixture:
        """The mSPRT mixing distribution, with ``rho`` at the configured level."""
        return sequential.Mixture(
            tuning=self.sequential_tuning,
            tau=self.sequential_tau if self.sequential_tau > 0 else None,
            design_alpha=round(1.0 - self.confidence_level, 12),
        )
