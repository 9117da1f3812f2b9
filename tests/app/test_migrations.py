"""The migrations and the models agree (a model change without its migration fails here), on
both databases, and the standard `alembic` command works from the repository root."""

from __future__ import annotations

import os
import subprocess

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from app.db import make_engine, migrate
from app.models import Base
from tests.support.postgres import Postgres
from tests.support.servers import ROOT


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_the_models_and_the_migrations_do_not_drift(
    kind: str, tmp_path, request: pytest.FixtureRequest
) -> None:
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    else:
        postgres: Postgres = request.getfixturevalue("postgres")
        url = postgres.fresh_database()
    migrate(url)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()
    assert differences == [], "models changed without a migration: " + repr(differences)


def test_the_alembic_command_works_from_the_repository_root(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    env = {**os.environ, "TORCHDOJO_DATABASE_URL": url}
    alembic = str(ROOT / ".venv" / "bin" / "alembic")
    upgraded = subprocess.run(
        [alembic, "upgrade", "head"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert upgraded.returncode == 0, upgraded.stderr
    current = subprocess.run(
        [alembic, "current"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert "(head)" in current.stdout, current.stdout + current.stderr
