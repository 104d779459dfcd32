"""Identities are normalized once and compared normalized (#15 probe: four-eyes was
bypassed by a trailing space or by case)."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural.mlops.errors import InvalidArgument, PermissionDenied
from neural.mlops.registry import ModelRegistry, ModelStage


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    r = ModelRegistry(str(tmp_path / "models"))
    r.register_model(name="fraud", version="v1", framework="sklearn",
                     created_by="ds@x.com", artifact_uri="s3://bucket/fraud/v1")
    return r


@pytest.mark.parametrize("spelling", ["me@x.com ", " me@x.com", "ME@x.com", "Me@X.COM",
                                      "me@x.com\t"])
def test_the_requester_cannot_approve_under_another_spelling(
    registry: ModelRegistry, spelling: str
) -> None:
    registry.request_promotion(name="fraud", version="v1", target_stage=ModelStage.STAGING,
                               requested_by="me@x.com")
    with pytest.raises(PermissionDenied):
        registry.approve_promotion(name="fraud", version="v1", approver=spelling)
    assert registry.get_model_version("fraud", "v1").stage is ModelStage.DEVELOPMENT


def test_a_named_reviewer_matches_under_any_spelling(registry: ModelRegistry) -> None:
    registry.request_promotion(name="fraud", version="v1", target_stage=ModelStage.STAGING,
                               requested_by="me@x.com", reviewers=["Boss@X.com"])
    registry.approve_promotion(name="fraud", version="v1", approver=" boss@x.com")
    assert registry.get_model_version("fraud", "v1").stage is ModelStage.STAGING


@pytest.mark.parametrize("bad", ["fr\u202eaud", "fraud\u200b", "\ufefffraud"])
def test_names_with_bidi_or_invisible_characters_are_refused(
    registry: ModelRegistry, bad: str
) -> None:
    with pytest.raises(InvalidArgument) as err:
        registry.register_model(name=bad, version="v1", created_by="ds@x.com",
                                artifact_uri="s3://b/k")
    assert err.value.field == "name"
