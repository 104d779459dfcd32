"""Registry behaviour through the public API, embedded and remote: same results, same errors."""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.processes import ServerProcess, start_server

from neural.mlops.errors import (
    AlreadyExists,
    DataLoss,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from neural.mlops.registry import ModelRegistry, ModelStage, PromotionStatus

_names = itertools.count()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path_factory.mktemp("registry-server"))
    yield srv
    srv.stop()


@pytest.fixture(params=["embedded", "remote"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> ModelRegistry:
    if request.param == "embedded":
        return ModelRegistry(tmp_path / "models")
    return ModelRegistry(request.getfixturevalue("shared_server").url)


@pytest.fixture
def name() -> str:
    return f"model_{os.getpid()}_{next(_names)}"


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    path = tmp_path / "model.bin"
    path.write_bytes(os.urandom(3 * 1024 * 1024 + 17))  # several upload chunks
    return path


def reg(r: ModelRegistry, name: str, version: str, **kw: object) -> object:
    kw.setdefault("created_by", "ds@example.com")
    kw.setdefault("framework", "sklearn")
    return r.register_model(name=name, version=version, **kw)  # type: ignore[arg-type]


def test_register_stores_artifact_with_checksum_and_download_verifies(
    registry: ModelRegistry, name: str, artifact: Path, tmp_path: Path
) -> None:
    mv = reg(registry, name, "1", model_path=artifact, metrics={"accuracy": 0.9},
             tags=["a", "b"], params={"depth": 6}, config={"threshold": 0.5},
             description="first")
    assert mv.stage is ModelStage.DEVELOPMENT
    assert mv.artifact.sha256 == hashlib.sha256(artifact.read_bytes()).hexdigest()
    assert mv.artifact.size_bytes == artifact.stat().st_size
    assert mv.params == {"depth": "6"} and mv.config == {"threshold": 0.5}
    out = registry.download_artifact(name, "1", tmp_path / "download")
    assert out.read_bytes() == artifact.read_bytes()


def test_uri_reference_is_recorded_as_is(registry: ModelRegistry, name: str) -> None:
    mv = reg(registry, name, "1", model_path="s3://bucket/models/fraud/1/model.pt")
    assert mv.artifact.uri == "s3://bucket/models/fraud/1/model.pt"
    assert not mv.artifact.stored
    with pytest.raises(FailedPrecondition):
        registry.download_artifact(name, "1", "unused")


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", ""), ("name", "../etc"), ("name", "a/b"), ("name", "a\\b"), ("name", "x\x01"),
     ("name", "n" * 129), ("version", ""), ("version", ".."), ("version", "v/1")],
)
def test_invalid_names_are_rejected_naming_the_field(
    registry: ModelRegistry, name: str, field: str, value: str
) -> None:
    kwargs = {"name": name, "version": "1", field: value}
    with pytest.raises(InvalidArgument) as err:
        reg(registry, **kwargs)  # type: ignore[arg-type]
    assert err.value.field == field
    assert field in str(err.value)


def test_duplicate_version_is_already_exists_and_changes_nothing(
    registry: ModelRegistry, name: str
) -> None:
    reg(registry, name, "1", metrics={"accuracy": 0.5})
    with pytest.raises(AlreadyExists):
        reg(registry, name, "1", metrics={"accuracy": 0.99})
    assert registry.get_model_version(name, "1").metrics == {"accuracy": 0.5}


def test_unknown_model_and_version_are_not_found(registry: ModelRegistry, name: str) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        registry.get_model_version(name, "1")
    reg(registry, name, "1")
    with pytest.raises(NotFound, match=f"{name}:2"):
        registry.get_model_version(name, "2")


def test_requester_cannot_approve_own_promotion(registry: ModelRegistry, name: str) -> None:
    reg(registry, name, "1")
    registry.request_promotion(name, "1", ModelStage.PRODUCTION, requested_by="alice@x.com")
    with pytest.raises(PermissionDenied, match="separation of duties"):
        registry.approve_promotion(name, "1", approver="alice@x.com")
    assert registry.get_model_version(name, "1").stage is ModelStage.DEVELOPMENT


def test_only_named_reviewers_may_approve(registry: ModelRegistry, name: str) -> None:
    reg(registry, name, "1")
    registry.request_promotion(name, "1", "production", requested_by="alice@x.com",
                               reviewers=["bob@x.com"])
    with pytest.raises(PermissionDenied, match="not a named reviewer"):
        registry.approve_promotion(name, "1", approver="mallory@x.com")
    req = registry.approve_promotion(name, "1", approver="bob@x.com", comment="ok")
    assert req.status is PromotionStatus.APPROVED
    assert registry.get_model_version(name, "1").stage is ModelStage.PRODUCTION


def test_n_of_m_approvals(registry: ModelRegistry, name: str) -> None:
    reg(registry, name, "1")
    registry.request_promotion(name, "1", ModelStage.STAGING, requested_by="alice@x.com",
                               reviewers=["bob@x.com", "carol@x.com", "dave@x.com"],
                               required_approvals=2)
    first = registry.approve_promotion(name, "1", approver="bob@x.com")
    assert first.status is PromotionStatus.PENDING and len(first.approvals) == 1
    assert registry.get_model_version(name, "1").stage is ModelStage.DEVELOPMENT
    with pytest.raises(FailedPrecondition, match="already approved"):
        registry.approve_promotion(name, "1", approver="bob@x.com")
    assert [
        r.request_id for r in registry.list_pending_approvals(reviewer="carol@x.com", name=name)
    ] == [first.request_id]
    assert registry.list_pending_approvals(reviewer="bob@x.com", name=name) == []
    done = registry.approve_promotion(name, "1", approver="carol@x.com")
    assert done.status is PromotionStatus.APPROVED
    assert registry.get_model_version(name, "1").stage is ModelStage.STAGING


def test_impossible_quorum_is_invalid(registry: ModelRegistry, name: str) -> None:
    reg(registry, name, "1")
    with pytest.raises(InvalidArgument) as err:
        registry.request_promotion(name, "1", "production", requested_by="alice@x.com",
                                   reviewers=["alice@x.com", "bob@x.com"], required_approvals=2)
    assert err.value.field == "required_approvals"
    assert registry.list_pending_approvals(name=name) == []


def test_approving_into_production_archives_the_previous_one(
    registry: ModelRegistry, name: str
) -> None:
    for version in ("1", "2"):
        reg(registry, name, version)
        registry.request_promotion(name, version, "production", requested_by="alice@x.com")
        registry.approve_promotion(name, version, approver="bob@x.com")
    prod = registry.get_latest_versions(name, ["production"])
    assert [v.version for v in prod] == ["2"]
    assert registry.get_model_version(name, "1").stage is ModelStage.ARCHIVED
    stage_moves = [
        (h.version, h.from_value, h.to_value)
        for h in registry.get_history(name)
        if h.kind == "stage"
    ]
    assert stage_moves == [("1", "development", "production"), ("1", "production", "archived"),
                           ("2", "development", "production")]


def test_decisions_on_a_closed_request_fail(registry: ModelRegistry, name: str) -> None:
    reg(registry, name, "1")
    registry.request_promotion(name, "1", "staging", requested_by="alice@x.com")
    rejected = registry.reject_promotion(name, "1", rejector="bob@x.com", comment="needs more eval")
    assert (
        rejected.status is PromotionStatus.REJECTED
        and rejected.decision_comment == "needs more eval"
    )
    with pytest.raises(FailedPrecondition, match="rejected, not pending"):
        registry.approve_promotion(name, "1", approver="bob@x.com")
    with pytest.raises(NotFound):
        registry.approve_promotion(name, "nope", approver="bob@x.com")


def test_cancel_is_for_the_requester_only(registry: ModelRegistry, name: str) -> None:
    reg(registry, name, "1")
    registry.request_promotion(name, "1", "production", requested_by="alice@x.com")
    with pytest.raises(PermissionDenied):
        registry.cancel_promotion(name, "1", cancelled_by="bob@x.com")
    with pytest.raises(FailedPrecondition, match="pending promotion request"):
        registry.request_promotion(name, "1", "production", requested_by="alice@x.com")
    assert (
        registry.cancel_promotion(name, "1", cancelled_by="alice@x.com").status
        is PromotionStatus.CANCELLED
    )


def test_gated_stages_need_approval(registry: ModelRegistry, name: str) -> None:
    reg(registry, name, "1")
    with pytest.raises(FailedPrecondition, match="approved promotion"):
        registry.transition_stage(name, "1", "production", actor="alice@x.com")
    assert registry.archive_model(name, "1", actor="alice@x.com").stage is ModelStage.ARCHIVED


def test_production_version_cannot_be_deleted(
    registry: ModelRegistry, name: str, artifact: Path
) -> None:
    reg(registry, name, "1", model_path=artifact)
    reg(registry, name, "2", model_path=artifact)
    registry.request_promotion(name, "1", "production", requested_by="alice@x.com")
    registry.approve_promotion(name, "1", approver="bob@x.com")
    with pytest.raises(FailedPrecondition, match="archive"):
        registry.delete_model_version(name, "1", deleted_by="alice@x.com")
    registry.delete_model_version(name, "2", deleted_by="alice@x.com")
    with pytest.raises(NotFound):
        registry.get_model_version(name, "2")
    assert registry.get_model_version(name, "1").stage is ModelStage.PRODUCTION


def test_alias_moves_are_history_and_roll_back_in_one_call(
    registry: ModelRegistry, name: str
) -> None:
    for version in ("1", "2"):
        reg(registry, name, version)
    registry.set_alias(name, "champion", "1", actor="alice@x.com", reason="first")
    moved = registry.set_alias(name, "champion", "2", actor="alice@x.com", reason="better")
    assert moved.previous_version == "1"
    assert registry.get_model_version(name, "@champion").version == "2"
    back = registry.rollback_alias(name, "champion", actor="bob@x.com", reason="regression")
    assert (back.version, back.previous_version) == ("1", "2")
    assert registry.get_model_by_alias(name, "champion").version == "1"
    alias_moves = [
        (h.from_value, h.to_value, h.actor) for h in registry.get_history(name) if h.kind == "alias"
    ]
    assert alias_moves == [
        ("", "1", "alice@x.com"),
        ("1", "2", "alice@x.com"),
        ("2", "1", "bob@x.com"),
    ]
    with pytest.raises(FailedPrecondition, match="alias"):
        registry.delete_model_version(name, "1", deleted_by="alice@x.com")


def test_compare_reports_one_sided_metrics(registry: ModelRegistry, name: str) -> None:
    reg(registry, name, "1", metrics={"accuracy": 0.8, "auc": 0.7}, tags=["x"], params={"lr": 0.1})
    reg(registry, name, "2", metrics={"accuracy": 0.9, "f1": 0.5}, tags=["y"], params={"lr": 0.2})
    cmp = registry.compare_models(name, "1", "2")
    acc = cmp["metrics_comparison"]["accuracy"]
    assert acc["difference"] == pytest.approx(0.1) and acc["relative_change"] == pytest.approx(
        0.125
    )
    assert cmp["metrics_comparison"]["auc"] == {
        "version1": 0.7,
        "version2": None,
        "difference": None,
        "relative_change": None,
    }
    assert cmp["metrics_comparison"]["f1"]["version1"] is None
    assert cmp["tags_only_in_version1"] == ["x"] and cmp["tags_only_in_version2"] == ["y"]
    assert cmp["params_diff"] == {"lr": {"version1": "0.1", "version2": "0.2"}}


def test_search_by_prefix_tag_stage_framework_metric_and_pages(
    registry: ModelRegistry, name: str
) -> None:
    for i in range(7):
        reg(registry, name, f"v{i}", metrics={"accuracy": 0.8 + i * 0.02},
            tags=["even"] if i % 2 == 0 else ["odd"], framework="xgboost" if i < 3 else "torch")
    good = registry.search_models(name_prefix=name, metric_conditions=["accuracy >= 0.9"])
    assert [v.version for v in good] == ["v5", "v6"]
    even_torch = registry.search_models(name_prefix=name, tags=["even"], framework="torch")
    assert [v.version for v in even_torch] == ["v4", "v6"]
    text = registry.search_models(filter=f"name = {name} and tag = odd and accuracy < 0.87")
    assert [v.version for v in text] == ["v1", "v3"]
    seen, token = [], ""
    while True:
        page = registry.list_versions(name, page_size=3, page_token=token)
        seen += [v.version for v in page]
        token = page.next_page_token
        if not token:
            break
    assert seen == [f"v{i}" for i in range(7)]
    assert registry.search_models(name_prefix=name, stage="production").items == []
    with pytest.raises(InvalidArgument):
        registry.search_models(filter="accuracy >>= 3")


def test_latest_versions_per_stage_and_list_models(registry: ModelRegistry, name: str) -> None:
    for version in ("1", "2", "3"):
        reg(registry, name, version)
    registry.request_promotion(name, "2", "staging", requested_by="alice@x.com")
    registry.approve_promotion(name, "2", approver="bob@x.com")
    latest = {v.stage: v.version for v in registry.get_latest_versions(name)}
    assert latest == {ModelStage.DEVELOPMENT: "3", ModelStage.STAGING: "2"}
    models = registry.list_models(name_prefix=name)
    assert [(m.name, m.version_count) for m in models] == [(name, 3)]


def test_update_changes_description_tags_metrics(registry: ModelRegistry, name: str) -> None:
    reg(registry, name, "1", tags=["a"], metrics={"accuracy": 0.5})
    mv = registry.update_model_version(name, "1", "alice@x.com", description="better docs",
                                       add_tags=["b"], remove_tags=["a"], metrics={"accuracy": 0.6})
    assert (mv.description, mv.tags, mv.metrics) == ("better docs", ["b"], {"accuracy": 0.6})


def test_non_finite_metric_is_rejected(registry: ModelRegistry, name: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        reg(registry, name, "1", metrics={"accuracy": float("nan")})
    assert err.value.field == "metrics.accuracy"


def test_corrupted_artifact_download_is_data_loss_and_leaves_no_file(
    registry: ModelRegistry, name: str, artifact: Path, tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    mv = reg(registry, name, "1", model_path=artifact)
    remote = registry.location.startswith("grpc://")
    root = request.getfixturevalue("shared_server").data_dir if remote else tmp_path / "models"
    stored = root / mv.artifact.uri
    stored.write_bytes(b"tampered" + stored.read_bytes()[8:])
    dest = tmp_path / "out.bin"
    with pytest.raises(DataLoss, match="corrupt|sha256"):
        registry.download_artifact(name, "1", dest)
    assert not dest.exists()
    assert not list(tmp_path.glob(".*.partial"))
