"""The engine factory: the right pool for each kind of database URL."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from app.db import make_engine


def test_sqlite_file_gets_a_pool_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dojo.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    assert path.exists(), "the folder of the database file is created"
    assert engine.pool.size() == 20  # type: ignore[attr-defined]


def test_in_memory_sqlite_works() -> None:
    # A pool size makes no sense for an in-memory database; passing one used to crash.
    for url in ("sqlite:///:memory:", "sqlite://"):
        engine = make_engine(url)
        with engine.connect() as connection:
            assert connection.execute(text("SELECT 1 + 1")).scalar() == 2
