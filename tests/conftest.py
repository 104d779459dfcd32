"""Shared fixtures: real control-plane processes on free loopback ports, and the engine
under test (SQLite by default; PostgreSQL with NEURAL_MLOPS_TEST_DATABASE_URL, see
support/databases.py)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support import databases  # noqa: E402
from support.leaks import closing_what_the_test_opens  # noqa: E402
from support.processes import ServerProcess, start_server  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    """With a PostgreSQL test URL and no server answering, the PostgreSQL run is skipped
    with one line outside CI and fails in CI."""
    if not databases.on_postgres():
        return
    why = databases.postgres().reachable()
    if not why:
        return
    line = f"PostgreSQL at {databases.ENV} unreachable ({why}): PostgreSQL half skipped"
    if os.environ.get("CI"):
        raise pytest.UsageError(line)
    pytest.exit(line, returncode=0)


# The storage-touching files: the PostgreSQL half of CI (.ci/run) runs them again with
# NEURAL_MLOPS_TEST_DATABASE_URL set (`pytest -m storage`). Tests that need PostgreSQL
# whatever the engine (test_pg_outage, store migration) use the postgres_url fixture.
STORAGE_FILES = frozenset({
    "test_ab_api.py", "test_ab_model_refs.py", "test_admin_store.py", "test_audit_api.py",
    "test_audit_server.py", "test_cli_rpc.py", "test_deploy_api.py", "test_deploy_e2e.py",
    "test_deploy_rollout.py", "test_metrics_integrity.py", "test_mtls.py", "test_oidc.py",
    "test_pg_chain.py", "test_probe.py", "test_registry_aliases.py", "test_registry_api.py",
    "test_registry_port.py", "test_registry_server.py", "test_routing_service.py",
    "test_sidecar_control_plane.py", "test_sidecar_shadow.py", "test_stats_store.py",
    "test_tls.py", "test_upstream_allowlist.py",
})
# Tests of those files about the SQLite store folder itself (not run on PostgreSQL).
SQLITE_ONLY = frozenset({
    "test_probe.py::test_audit_verify_of_a_folder_reads_without_writing",
})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in STORAGE_FILES and \
                f"{item.path.name}::{item.name}" not in SQLITE_ONLY:
            item.add_marker(pytest.mark.storage)


def pytest_unconfigure(config: pytest.Config) -> None:
    databases.postgres().drop_all()


@pytest.fixture(autouse=True)
def _fresh_databases(request: pytest.FixtureRequest) -> Iterator[None]:
    """Drop the PostgreSQL databases of a test's own stores once it (and its fixtures)
    ended; those of module-wide servers are dropped when the session ends."""
    pg = databases.postgres()
    mark = pg.mark()
    yield
    test_dir = request.node.funcargs.get("tmp_path") if hasattr(request.node, "funcargs") else None
    pg.drop_since(mark, test_dir)


@pytest.fixture(autouse=True, scope="module")
def _close_what_the_module_opened() -> Iterator[None]:
    """The same for a module's fixtures, once the module ended."""
    with closing_what_the_test_opens():
        yield


@pytest.fixture(autouse=True)
def _close_what_the_test_opened(request: pytest.FixtureRequest,
                                tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Close the embedded stores a test opened in this process (in its tmp_path or outside
    pytest's temporary folders) once it and its fixtures ended (support/leaks.py); a
    module's fixtures, which may start while a test runs, keep theirs until it ends."""
    own = lambda: request.node.funcargs.get("tmp_path")  # noqa: E731
    with closing_what_the_test_opens(tmp_path_factory.getbasetemp().resolve(), own,
                                     remote=False):
        yield


@pytest.fixture
def postgres_url(tmp_path: Path) -> str:
    """A new, migrated, empty PostgreSQL database, whichever engine the suite runs on
    (for tests that need PostgreSQL itself); skipped with one line when none answers,
    outside CI."""
    pg = databases.reachable_postgres()
    return pg.for_dir(tmp_path / "postgres-store")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A `neural-mlops serve` subprocess with its own store; stopped with SIGTERM."""
    srv = start_server(tmp_path / "server-data")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One `neural-mlops serve` for all the tests of a module that need no fresh store
    (each works on its own names); stopped with SIGTERM when the module ends. A server
    start is one to several seconds of the suite; most tests only need one that runs."""
    srv = start_server(tmp_path_factory.mktemp("shared-server") / "server-data")
    yield srv
    srv.stop()


@pytest.fixture
def in_tmp(tmp_path: Path) -> Iterator[Path]:
    """Run the test with tmp_path as the working directory (the guide uses relative paths)."""
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)
