"""Database engine and sessions (SQLAlchemy 2). SQLite by default, PostgreSQL via the URL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from app.config import ROOT


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite://"):
        database = url.removeprefix("sqlite://").removeprefix("/").split("?")[0]
        in_memory = database in ("", ":memory:")
        pool_args: dict[str, int] = {}
        if not in_memory:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
            # A generous pool: many learners' runs write at once, and run bookkeeping happens
            # in worker threads, so a request never holds the event loop while it waits.
            # (An in-memory database lives in one connection: SQLAlchemy's own pool for it.)
            pool_args = {"pool_size": 20, "max_overflow": 40, "pool_timeout": 60}
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **pool_args
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection, _record):
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the run writer
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=20, max_overflow=40, pool_timeout=60)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def migrate(url: str) -> None:
    """Bring the database to the newest schema (alembic upgrade head)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(ROOT / "app" / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, "head")


def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    with factory() as session:
        yield session
