"""Database engine and sessions (SQLAlchemy 2). SQLite by default, PostgreSQL via the URL."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from fastapi.routing import APIRoute
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from app.config import ROOT

T = TypeVar("T")


def make_engine(url: str, connections: int = 30) -> Engine:
    """`connections`: the most this process holds (PostgreSQL); every replica counts against
    the server's max_connections (100 by default)."""
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
        def _sqlite_pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the run writer
            cursor.execute("PRAGMA foreign_keys=ON")
            # In WAL mode, NORMAL syncs at checkpoints, not at every commit: a crash of the app
            # loses nothing, a power cut at most the last commits; a run's first event is no
            # longer behind three fsyncs.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    # A worker thread that finds every connection in use waits for one (never while holding
    # another: app/db.in_thread), so a crowd queues here instead of overrunning the server.
    return create_engine(
        url, pool_pre_ping=True, pool_size=connections, max_overflow=0, pool_timeout=60
    )


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


async def in_thread(
    session: Session,
    work: Callable[..., T],
    *args: Any,
    limiter: anyio.CapacityLimiter | None = None,
) -> T:
    """Run `work(session, *args)` in a worker thread and end its transaction there.

    The one rule that keeps the site from deadlocking under a crowd: a request holds a database
    connection only while a thread is running its queries, never while it waits (for a thread,
    for the runner, for the next event). An async route does every database step this way;
    a sync one runs in a thread already and ends its transactions before it returns.

    `limiter`: a pool of threads of its own (a crowd of one kind of request then queues there,
    not in front of everyone else's); default, the app's shared one."""

    def step() -> T:
        try:
            return work(session, *args)
        finally:
            if session.in_transaction():
                session.rollback()  # what was not committed is nothing; the connection goes back

    return await anyio.to_thread.run_sync(step, limiter=limiter)


class ReleasingRoute(APIRoute):
    """A route whose sync endpoint, still in its worker thread, ends the transaction of every
    session it was given before it returns: otherwise the request would keep its connection
    while it waits for a thread again (FastAPI checks a sync endpoint's answer in one)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint):
            endpoint = _releasing(endpoint)
        super().__init__(path, endpoint, **kwargs)


def _releasing(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(endpoint)
    def released(*args: Any, **kwargs: Any) -> Any:
        try:
            return endpoint(*args, **kwargs)
        finally:
            for value in (*args, *kwargs.values()):
                if isinstance(value, Session) and value.in_transaction():
                    value.rollback()

    return released
