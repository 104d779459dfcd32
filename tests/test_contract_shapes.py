"""The contract's shapes (issue #13): one pagination rule for every list (server/pagination.py),
closed vocabularies as enums whose UNSPECIFIED is refused where a value is required, history
entries with typed stages, the Python API unchanged on top."""

from __future__ import annotations

import grpc
import pytest
from support.processes import ServerProcess
from support.status import details

from neural.mlops.errors import InvalidArgument as ClientInvalidArgument
from neural.mlops.registry import ModelRegistry
from neural.mlops.server.errors import InvalidArgument
from neural.mlops.server.pagination import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    encode_token,
    keyset,
    page_size,
)
from neural.mlops.v1 import registry_pb2 as pb
from neural.mlops.v1.registry_pb2_grpc import RegistryServiceStub


def test_a_page_size_above_the_maximum_is_refused_not_capped() -> None:
    assert page_size(0) == DEFAULT_PAGE_SIZE
    assert page_size(MAX_PAGE_SIZE) == MAX_PAGE_SIZE
    for bad in (-1, MAX_PAGE_SIZE + 1):
        with pytest.raises(InvalidArgument) as err:
            page_size(bad)
        assert err.value.field == "page_size"


def test_keyset_pages_through_a_list_and_refuses_a_forged_token() -> None:
    items = list(range(7))
    seen, token = [], ""
    while True:
        page, token = keyset(items, 3, token, listing="numbers", key=lambda i: (i,),
                             kinds=(int,))
        seen += page
        if not token:
            break
    assert seen == items
    forged = ("not base64!", encode_token("x"), encode_token(["numbers", "1"]),
              encode_token(["other", 1]), encode_token(["numbers", 2**63]),
              encode_token(["numbers", 1, 2]), encode_token(["numbers", True]))
    for bad in forged:
        with pytest.raises(InvalidArgument) as err:
            keyset(items, 3, bad, listing="numbers", key=lambda i: (i,), kinds=(int,))
        assert err.value.field == "page_token"


@pytest.fixture
def server(shared_server: ServerProcess) -> ServerProcess:
    """The module's tests share one control plane; each registers its own model."""
    return shared_server


def _stub_call(server: ServerProcess, method: str, request: object) -> object:
    with grpc.insecure_channel(server.address) as channel:
        return getattr(RegistryServiceStub(channel), method)(request, timeout=20)


def test_lists_share_the_rule_and_history_pages_with_typed_stages(server: ServerProcess) -> None:
    registry = ModelRegistry(server.url)
    for i in range(3):
        registry.register_model(name="fraud", version=f"v{i}", created_by="a@x.com",
                                artifact_uri=f"s3://bucket/fraud/v{i}")
        registry.transition_stage("fraud", f"v{i}", "archived", "a@x.com")
    with pytest.raises(grpc.RpcError) as err:
        _stub_call(server, "ListModels", pb.ListModelsRequest(page_size=MAX_PAGE_SIZE + 1))
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert details(err.value).field_violations[0][0] == "page_size"

    entries, token = [], ""
    while True:
        resp = _stub_call(server, "GetHistory",
                          pb.GetHistoryRequest(name="fraud", page_size=1, page_token=token))
        entries += resp.entries  # type: ignore[attr-defined]
        if not (token := resp.next_page_token):  # type: ignore[attr-defined]
            break
    assert len(entries) >= 3
    moves = [e for e in entries if e.kind == pb.HISTORY_KIND_STAGE]
    assert {(e.from_stage, e.to_stage) for e in moves} == {
        (pb.MODEL_STAGE_DEVELOPMENT, pb.MODEL_STAGE_ARCHIVED)}
    # The Python API keeps its documented shape: every entry, stages as strings.
    history = registry.get_history("fraud")
    assert len(history) == len(entries)
    assert {(h.from_value, h.to_value) for h in history if h.kind == "stage"} == {
        ("development", "archived")}


def test_a_metric_condition_without_an_operator_is_refused_naming_it(
    server: ServerProcess,
) -> None:
    request = pb.SearchModelVersionsRequest(
        metric_conditions=[pb.MetricCondition(metric="accuracy", value=0.9)])
    with pytest.raises(grpc.RpcError) as err:
        _stub_call(server, "SearchModelVersions", request)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert details(err.value).field_violations[0][0] == "metric_conditions[0].op"
    # The Python API still takes the operator as text and sends the enum.
    registry = ModelRegistry(server.url)
    registry.register_model(name="scored", version="v1", created_by="a@x.com",
                            artifact_uri="s3://bucket/scored/v1", metrics={"accuracy": 0.9})
    assert [v.version for v in registry.search_models(metric_conditions=["accuracy >= 0.9"])] \
        == ["v1"]
    assert list(registry.search_models(metric_conditions=["accuracy != 0.9"])) == []
    with pytest.raises(ClientInvalidArgument):
        registry.search_models(metric_conditions=["accuracy >> 0.9"])
