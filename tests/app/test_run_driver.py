"""A run's events reach the database in order, through the process's one event writer. Another
web process reads a run from the database and stops at its `done`: had a slow batch committed
after the `done`'s, that process's browsers would miss the events in it (the crowd benchmark
caught this: 2 streams of 40, when each run stored its own batches). A batch the database
refuses is stored on a later tick, before the `done`."""

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
from app.runs.driver import RunDriver
from app.runs.writer import FLUSH_EVERY_S, EventWriter
from runner.protocol import Done, Output


async def runner_stream(flushing: threading.Event) -> AsyncIterator[Any]:
    """Two lines; the `done` comes while the flusher is still storing the second one."""
    yield Output(seq=0, t=0.0, stream="stdout", text="one\n")
    await asyncio.sleep(FLUSH_EVERY_S * 2)  # the first line is stored by the flusher
    yield Output(seq=1, t=0.1, stream="stdout", text="two\n")
    while not flushing.is_set():  # the flusher took "two" and is storing it, slowly
        await asyncio.sleep(0.01)
    yield Done(seq=2, t=0.2, status="completed", exit_code=0, duration_ms=200.0)


def drive(run: Run, sessions: Any, stream: AsyncIterator[Any]) -> None:
    async def main() -> None:
        writer = EventWriter(sessions, Fanout())
        await writer.start()
        driver = RunDriver(
            run,
            stream,
            RunChannel(),
            sessions=sessions,
            writer=writer,
            metrics=WebMetrics(),
            ending=lambda: ("cancelled", None),
            finishing=lambda: None,
        )
        await driver.drive()
        await writer.close()

    asyncio.run(asyncio.wait_for(main(), 60))


def stored_seqs(sessions: Any, run: Run) -> list[int]:
    with sessions() as session:
        return list(
            session.scalars(
                select(RunEvent.seq).where(RunEvent.run_id == run.id).order_by(RunEvent.id)
            )
        )


def a_run(tmp_path: Path) -> tuple[Any, Run]:
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
    return sessions, run


def test_a_slow_batch_is_stored_before_the_done_that_follows_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions, run = a_run(tmp_path)
    committed: list[list[int]] = []  # each batch's seqs, in the order they were committed
    flushing = threading.Event()
    real_store = store.store

    def slow_store(session, fanout, batches):  # type: ignore[no-untyped-def]
        seqs = [e["seq"] for e in batches[run.id]]
        if seqs == [1]:  # the second line's batch: slow, like a busy database
            flushing.set()
            time.sleep(1.0)
        real_store(session, fanout, batches)
        committed.append(seqs)

    monkeypatch.setattr(store, "store", slow_store)
    drive(run, sessions, runner_stream(flushing))

    flat = [seq for batch in committed for seq in batch]
    assert flat == [0, 1, 2], committed
    assert stored_seqs(sessions, run) == [0, 1, 2]


def test_a_batch_the_database_refuses_is_stored_later_before_the_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions, run = a_run(tmp_path)
    real_store = store.store
    refused: list[list[int]] = []

    def refusing_store(session, fanout, batches):  # type: ignore[no-untyped-def]
        if not refused:  # the first batch: the database is away
            refused.append([e["seq"] for e in batches[run.id]])
            raise OSError("the database is away")
        real_store(session, fanout, batches)

    monkeypatch.setattr(store, "store", refusing_store)
    flushing = threading.Event()
    flushing.set()
    drive(run, sessions, runner_stream(flushing))
    assert refused == [[0]]
    assert stored_seqs(sessions, run) == [0, 1, 2]


def test_a_reader_that_meets_the_done_between_two_reads_gets_every_event_before_it(
    tmp_path: Path,
) -> None:
    """A process reading a run from the database reads its new events, then looks for a `done`:
    were the rest of the run (events and `done`) committed between those two statements, it
    must not jump to the `done` past the events stored with it."""
    from sqlalchemy import event as sa_event

    sessions, run = a_run(tmp_path)
    with sessions() as session:
        store.store(session, Fanout(), {run.id: [{"seq": 0, "type": "output", "text": "a"}]})

    engine = sessions.kw["bind"]
    late = [
        {"seq": 1, "type": "output", "text": "b"},
        {"seq": 2, "type": "output", "text": "c"},
        {"seq": 3, "type": "done", "status": "completed"},
    ]
    reads = 0

    def after_first_read(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        nonlocal reads
        if "FROM run_events" in statement and "ORDER BY run_events.seq" in statement:
            reads += 1
            if reads == 1:  # the rest of the run commits right after the first read
                with sessions() as other:
                    store.store(other, Fanout(), {run.id: late})

    sa_event.listen(engine, "after_cursor_execute", after_first_read)
    try:
        with sessions() as session:
            rows = store.events_after(session, Fanout(), run.id, -1)
    finally:
        sa_event.remove(engine, "after_cursor_execute", after_first_read)
    assert [row["seq"] for row in rows] == [0, 1, 2, 3]
