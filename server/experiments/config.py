"""How an A/B test is judged: the decision rules and the analysis settings fixed at creation."""

from __future__ import annotations

from dataclasses import dataclass

from neural.mlops.server.experiments import sequential

DECISION_FIXED = "fixed_horizon"
DECISION_SEQUENTIAL = "sequential"
DECISION_RULES = (DECISION_FIXED, DECISION_SEQUENTIAL)

# Fabijan et al. (KDD 2019): a sample-ratio mismatch alarm at p < 0.001.
SRM_THRESHOLD = 0.001


@dataclass(frozen=True, slots=True)
class AnalysisConfig:
    """How a test is judged; fixed when the test is created."""

    confidence_level: float = 0.95
    minimum_detectable_effect: float = 0.05  # relative lift of the success rate (0.05 = 5%)
    power: float = 0.8
    decision_rule: str = DECISION_FIXED  # or DECISION_SEQUENTIAL
    sequential_tau: float = sequential.DEFAULT_TAU
    srm_threshold: float = SRM_THRESHOLD
