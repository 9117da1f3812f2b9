"""The driver stores a run's events in order. Another web process reads a run from the database
and stops at its `done`: had a slow batch committed after the `done`'s, that process's browsers
would miss the events in it (the crowd benchmark caught this: 2 streams of 40)."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.db import make_engine, make_sessionmaker, migrate
from app.fanout import Fanout
from app.metrics import WebMetrics
from app.models import Run, RunEvent, User
from app.runs import store
from app.runs.channel import RunChannel
from app.runs.driver import FLUSH_EVERY_S, RunDriver
from runner.protocol import Done, Output


async def runner_stream(flushing: threading.Event) -> AsyncIterator[Any]:
    """Two lines; the `done` comes while the flusher is still storing the second one."""
    yield Output(seq=0, t=0.0, stream="stdout", text="one\n")
    await asyncio.sleep(FLUSH_EVERY_S * 2)  # the first line is stored by the flusher
    yield Output(seq=1, t=0.1, stream="stdout", text="two\n")
    while not flushing.is_set():  # the flusher took "two" and is storing it, slowly
        await asyncio.sleep(0.01)
    yield Done(seq=2, t=0.2, status="completed", exit_code=0, duration_ms=200.0)


def test_a_slow_batch_is_stored_before_the_done_that_follows_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'driver.sqlite3'}"
    migrate(url)
    sessions = make_sessionmaker(make_engine(url))
    with sessions() as session:
        user = User(email="a@example.com", password_hash="x")
        session.add(user)
        session.commit()
        run = Run(
            id=uuid.uuid4().hex,
            user_id=user.id,
            lesson_key="c/l",
            mode="run",
            code="",
            status="running",
            driver="here",
            heartbeat_at=store.now(),
        )
        session.add(run)
        session.commit()

    committed: list[list[int]] = []  # each batch's seqs, in the order they were committed
    flushing = threading.Event()
    real_store = store.store

    def slow_store(session, fanout, run_id, events):  # type: ignore[no-untyped-def]
        seqs = [e["seq"] for e in events]
        if seqs == [1]:  # the second line's batch: slow, like a busy database
            flushing.set()
            time.sleep(1.0)
        real_store(session, fanout, run_id, events)
        committed.append(seqs)

    monkeypatch.setattr(store, "store", slow_store)
    driver = RunDriver(
        run,
        runner_stream(flushing),
        RunChannel(),
        sessions=sessions,
        fanout=Fanout(),
        metrics=WebMetrics(),
        ending=lambda: ("cancelled", None),
        finishing=lambda: None,
    )
    asyncio.run(asyncio.wait_for(driver.drive(), 60))

    flat = [seq for batch in committed for seq in batch]
    assert flat == [0, 1, 2], committed
    with sessions() as session:
        stored = session.scalars(
            select(RunEvent.seq).where(RunEvent.run_id == run.id).order_by(RunEvent.id)
        ).all()
    assert list(stored) == [0, 1, 2]
