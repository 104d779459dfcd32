"""Registry result types. Field names are the ones the seed documentation reads."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from neural.mlops.server.registry.lineage import Lineage

T = TypeVar("T")


class ModelStage(StrEnum):
    DEVELOPMENT = "development"
    STAGING = "staging"
    PRODUCTION = "production"
    ARCHIVED = "archived"


# Entering these stages needs an approved promotion request.
GATED_STAGES = frozenset({ModelStage.STAGING, ModelStage.PRODUCTION})


class PromotionStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Artifact:
    uri: str
    sha256: str = ""
    size_bytes: int = 0
    filename: str = ""
    stored: bool = False


@dataclass(frozen=True, slots=True)
class ModelVersion:
    name: str
    version: str
    stage: ModelStage
    framework: str
    description: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    metrics: dict[str, float] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    artifact: Artifact = field(default_factory=lambda: Artifact(uri=""))
    aliases: list[str] = field(default_factory=list)
    lineage: Lineage = field(default_factory=Lineage)

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"


# The seed calls the result of register_model "metadata".
ModelMetadata = ModelVersion


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    name: str
    created_at: datetime
    updated_at: datetime
    version_count: int
    aliases: dict[str, str]
    latest_versions: list[ModelVersion]


@dataclass(frozen=True, slots=True)
class PromotionVote:
    approver: str
    comment: str
    at: datetime


@dataclass(frozen=True, slots=True)
class PromotionRequest:
    request_id: str
    name: str
    version: str
    target_stage: ModelStage
    from_stage: ModelStage
    requested_by: str
    justification: str
    reviewers: list[str]
    required_approvals: int
    status: PromotionStatus
    approvals: list[PromotionVote]
    decided_by: str
    decision_comment: str
    created_at: datetime
    decided_at: datetime | None


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    kind: str  # "stage" | "alias"
    name: str
    version: str
    from_value: str
    to_value: str
    alias: str
    actor: str
    reason: str
    promotion_request_id: str
    at: datetime
    # The entry's position in the store (its page key); not part of the entry's value.
    seq: int = field(default=0, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class AliasChange:
    name: str
    alias: str
    version: str
    previous_version: str


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing; iterate it directly, follow ``next_page_token`` for more."""

    items: list[T]
    next_page_token: str = ""

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)
