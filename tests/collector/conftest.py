"""Fixtures: a running collector on SQLite, and a PostgreSQL server for the session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.collector.harness import Collector, PostgresAbsent, PostgresServer


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer()
    except PostgresAbsent as err:      # absent: a skip (a failure in CI); failing: an error
        pytest.skip(f"NO POSTGRESQL HERE, PostgreSQL tests not run: {err}")
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database URL of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'collector.db'}"
    return request.getfixturevalue("postgres").new_database()


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    running = Collector(tmp_path / "collector").start()
    yield running
    running.stop()
