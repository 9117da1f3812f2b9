"""The real app over real HTTP: uvicorn in a subprocess, the embedded sandbox pool, and a
database that is a real SQLite file or a real PostgreSQL server started here."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.postgres import Postgres, postgres_server
from tests.support.servers import Learner, Server, start_server


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp(request.param)
    if request.param == "sqlite":
        database_url = f"sqlite:///{tmp / 'torchdojo.sqlite3'}"
    else:
        database_url = request.getfixturevalue("postgres").url
    server = start_server(database_url, tmp)
    yield server
    server.process.terminate()
    server.process.wait(30)


@pytest.fixture
def learner(server: Server) -> Learner:
    return Learner(server.url).sign_up()
