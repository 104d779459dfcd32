"""Experiment result types. Field names are the ones the seed documentation reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from neural.mlops.server.experiments.bandit import BanditConfig
from neural.mlops.server.experiments.config import (
    DECISION_FIXED,
    HOLM,
    SRM_THRESHOLD,
    AnalysisConfig,
)
from neural.mlops.server.experiments.guardrails import Guardrail
from neural.mlops.server.experiments.sequential import DEFAULT_TUNING
from neural.mlops.v1.assignment import Strategy


class TrafficSplitStrategy(StrEnum):
    HASH_BASED = "hash_based"
    RANDOM = "random"
    ROUND_ROBIN = "round_robin"
    # Thompson sampling (bandit.py): hashed by the current weights, sticky in sidecars.
    MULTI_ARMED_BANDIT = "multi_armed_bandit"

    @property
    def assignment(self) -> Strategy:
        return {
            TrafficSplitStrategy.HASH_BASED: Strategy.HASH,
            TrafficSplitStrategy.RANDOM: Strategy.RANDOM,
            TrafficSplitStrategy.ROUND_ROBIN: Strategy.ROUND_ROBIN,
            TrafficSplitStrategy.MULTI_ARMED_BANDIT: Strategy.HASH,
        }[self]


class TestStatus(StrEnum):
    __test__ = False  # not a pytest class

    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    CONCLUDED = "concluded"


# status -> statuses it may move to
TRANSITIONS: dict[TestStatus, frozenset[TestStatus]] = {
    TestStatus.DRAFT: frozenset({TestStatus.RUNNING, TestStatus.STOPPED}),
    TestStatus.RUNNING: frozenset({TestStatus.PAUSED, TestStatus.STOPPED, TestStatus.CONCLUDED}),
    TestStatus.PAUSED: frozenset({TestStatus.RUNNING, TestStatus.STOPPED, TestStatus.CONCLUDED}),
    TestStatus.STOPPED: frozenset({TestStatus.CONCLUDED}),
    TestStatus.CONCLUDED: frozenset(),
}

# Traffic may be recorded while units can still produce outcomes.
RECORDING = frozenset({TestStatus.RUNNING, TestStatus.PAUSED, TestStatus.STOPPED})


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    model_ref: str
    weight: float

    @property
    def model_name(self) -> str:
        return self.model_ref.split(":", 1)[0]

    @property
    def model_version(self) -> str:
        return self.model_ref.split(":", 1)[1] if ":" in self.model_ref else ""


@dataclass(frozen=True, slots=True)
class SplitChange:
    at: datetime
    actor: str
    weights: dict[str, float]
    explicit: bool = False
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ABTest:
    test_id: str
    name: str
    description: str
    status: TestStatus
    strategy: TrafficSplitStrategy
    variants: list[Variant]  # hash order: non-control variants first, control last
    control: str
    model_name: str
    created_by: str
    created_at: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None
    winner: str = ""
    conclusion: str = ""
    confidence_level: float = 0.95
    minimum_detectable_effect: float = 0.05
    power: float = 0.8
    decision_rule: str = DECISION_FIXED
    sequential_tau: float = 0.0  # 0: the mixture scaled by sequential_tuning
    forced_variants: dict[str, str] = field(default_factory=dict)
    split_history: list[SplitChange] = field(default_factory=list)
    running_seconds: float = 0.0
    sequential_tuning: float = DEFAULT_TUNING
    srm_threshold: float = SRM_THRESHOLD
    multiple_testing: str = HOLM
    prior_mean: float = 0.0
    prior_sd: float = 0.0
    guardrails: tuple[Guardrail, ...] = ()  # stop the test when one is significantly worse
    bandit: BanditConfig | None = None  # MULTI_ARMED_BANDIT tests only
    # Its layer (experiments/layers.py): the share asked for, the range held once started
    # (or fixed at create), and the targeting conditions (canonical texts).
    layer: str = ""
    layer_share: float = 1.0
    layer_range: tuple[float, float] | None = None
    targeting: tuple[str, ...] = ()

    @property
    def traffic_split(self) -> float:
        """Share of traffic outside control (the treatment's share with two variants)."""
        return sum(v.weight for v in self.variants if v.name != self.control)

    def variant(self, name: str) -> Variant | None:
        for v in self.variants:
            if v.name == name:
                return v
        return None

    @property
    def control_variant(self) -> str:
        """The control's model reference (seed argument name)."""
        v = self.variant(self.control)
        return v.model_ref if v else ""

    @property
    def treatment_variant(self) -> str:
        """The first non-control variant's model reference."""
        for v in self.variants:
            if v.name != self.control:
                return v.model_ref
        return ""

    @property
    def weights(self) -> dict[str, float]:
        return {v.name: v.weight for v in self.variants}

    def analysis_config(self) -> AnalysisConfig:
        return AnalysisConfig(
            confidence_level=self.confidence_level,
            minimum_detectable_effect=self.minimum_detectable_effect,
            power=self.power,
            decision_rule=self.decision_rule,
            sequential_tau=self.sequential_tau,
            sequential_tuning=self.sequential_tuning,
            srm_threshold=self.srm_threshold,
            multiple_testing=self.multiple_testing,
            prior_mean=self.prior_mean,
            prior_sd=self.prior_sd,
        )
