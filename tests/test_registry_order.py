"""ListVersions / SearchModelVersions ``order_by``: server-side order with keyset pages,
embedded and remote (the remote server on PostgreSQL too: marked storage)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.processes import ServerProcess, start_server

from neural.mlops.errors import InvalidArgument
from neural.mlops.registry import ModelRegistry, ModelVersion

pytestmark = pytest.mark.storage
_names = itertools.count()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path_factory.mktemp("registry-order"))
    yield srv
    srv.stop()


@pytest.fixture(params=["embedded", "remote"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> ModelRegistry:
    if request.param == "embedded":
        return ModelRegistry(tmp_path / "models")
    return ModelRegistry(request.getfixturevalue("shared_server").url)


@pytest.fixture
def name() -> str:
    return f"order_{os.getpid()}_{next(_names)}"


def reg(r: ModelRegistry, name: str, version: str, acc: float | None) -> ModelVersion:
    return r.register_model(name=name, version=version, framework="sklearn",
                            created_by="ds@example.com", artifact_uri=f"s3://b/{version}",
                            metrics={} if acc is None else {"accuracy": acc, "f1": 0.5})


def pages(r: ModelRegistry, name: str, order_by: str, size: int,
          between: Iterator[None] | None = None) -> list[str]:
    out: list[str] = []
    token = ""
    while True:
        page = r.list_versions(name, page_size=size, page_token=token, order_by=order_by)
        out += [v.version for v in page.items]
        token = page.next_page_token
        if not token:
            return out
        if between is not None:
            next(between, None)


def test_metric_order_across_pages_ties_by_registration_missing_last(
        registry: ModelRegistry, name: str) -> None:
    accs = [0.7, None, 0.9, 0.8, 0.9, None, 0.75, 0.8]
    for i, acc in enumerate(accs):
        reg(registry, name, f"v{i}", acc)
    desc = pages(registry, name, "metrics.accuracy desc", 3)
    assert desc == ["v4", "v2", "v7", "v3", "v6", "v0", "v5", "v1"]
    asc = pages(registry, name, "metrics.accuracy asc", 2)
    assert asc == ["v0", "v6", "v3", "v7", "v2", "v4", "v1", "v5"]
    assert pages(registry, name, "version desc", 3) == [f"v{i}" for i in reversed(range(8))]
    assert pages(registry, name, "created asc", 5) == [f"v{i}" for i in range(8)]
    assert pages(registry, name, "", 3) == [f"v{i}" for i in range(8)]


def test_paging_a_sorted_list_while_versions_are_added_neither_repeats_nor_skips(
        registry: ModelRegistry, name: str) -> None:
    for i in range(12):
        reg(registry, name, f"a{i:02d}", 0.5 + i / 100)
    added = iter([0.555, None, 0.1])  # ahead of the position, missing (last), behind

    def add() -> Iterator[None]:
        for n, acc in enumerate(added):
            reg(registry, name, f"b{n}", acc)
            yield None

    seen = pages(registry, name, "metrics.accuracy asc", 4, add())
    assert len(seen) == len(set(seen)), seen
    originals = [f"a{i:02d}" for i in range(12)]
    assert [v for v in seen if v.startswith("a")] == originals
    # The version added ahead of the position (0.555 after the first page) is reached;
    # the one added behind (0.1) is not; the one without the metric comes last.
    assert "b0" in seen and "b2" not in seen and seen[-1] == "b1"
    values = [v for v in seen if v != "b1"]
    full = {v.version: v.metrics["accuracy"] for v in registry.list_versions(
        name, page_size=100).items if "accuracy" in v.metrics}
    assert [full[v] for v in values] == sorted(full[v] for v in values)


def test_search_orders_too_and_bad_orders_name_the_part(
        registry: ModelRegistry, name: str) -> None:
    for i, acc in enumerate([0.6, 0.95, 0.7]):
        reg(registry, name, f"s{i}", acc)
    page = registry.search_models(name_prefix=name, order_by="metrics.accuracy desc",
                                  filter="accuracy >= 0.65")
    assert [v.version for v in page.items] == ["s1", "s2"]
    for bad, part in [("accuracy desc", "'accuracy'"), ("created sideways", "'sideways'"),
                      ("metrics. desc", "'metrics.'"), ("a b c", "expected")]:
        with pytest.raises(InvalidArgument, match="order_by") as err:
            registry.list_versions(name, order_by=bad)
        assert part in str(err.value)
    first = registry.list_versions(name, page_size=1, order_by="metrics.accuracy desc")
    with pytest.raises(InvalidArgument, match="page_token"):
        registry.list_versions(name, page_size=1, order_by="created desc",
                               page_token=first.next_page_token)
    with pytest.raises(InvalidArgument, match="page_token"):
        registry.list_versions(name, page_size=1, page_token=first.next_page_token)
