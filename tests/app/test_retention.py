"""Retention on both databases: old run events go, a learner past their budget loses their
oldest runs' events first, and what is never purged stays (the run rows and their `done`,
drafts, progress, accounts); `torchdojo purge` does it by hand."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from app.auth import create_user
from app.db import make_engine, make_sessionmaker, migrate
from app.models import Draft, Progress, Run, RunEvent
from app.retention import purge
from tests.support.postgres import Postgres
from tests.support.servers import ROOT

NOW = datetime(2026, 12, 1, tzinfo=UTC)
FIGURE = {"type": "figure", "format": "png", "data": "A" * 100_000}


def _run(session, user_id: int, days_old: float, *, figures: int = 3) -> str:
    run_id = os.urandom(16).hex()
    events = [{"type": "started", "seq": 0}, *({**FIGURE, "seq": i + 1} for i in range(figures))]
    events.append({"type": "done", "seq": figures + 1, "status": "completed"})
    size = sum(len(str(e)) for e in events)
    session.add(
        Run(
            id=run_id,
            user_id=user_id,
            lesson_key="c/l",
            mode="run",
            code="print(1)",
            status="completed",
            created_at=NOW - timedelta(days=days_old),
            events_bytes=size,
        )
    )
    session.add_all(RunEvent(run_id=run_id, seq=e["seq"], type=e["type"], data=e) for e in events)
    session.commit()
    return run_id


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    else:
        postgres: Postgres = request.getfixturevalue("postgres")
        url = postgres.fresh_database()
    migrate(url)
    return url


def test_old_events_go_and_the_rest_stays(database: str) -> None:
    engine = make_engine(database)
    try:
        with make_sessionmaker(engine)() as session:
            user = create_user(session=session, email="r@example.com", password="long enough")
            session.add(Draft(user_id=user.id, lesson_key="c/l", code="draft"))
            session.add(Progress(user_id=user.id, lesson_key="c/l", status="passed"))
            session.commit()
            old, recent = _run(session, user.id, 40), _run(session, user.id, 1)
            report = purge(session, keep_days=30, budget_bytes=10**9, now=NOW)
            assert report.runs == 1 and report.events == 4 and report.bytes > 300_000
            left = dict(
                session.execute(
                    select(RunEvent.run_id, func.count()).group_by(RunEvent.run_id)
                ).all()
            )
            assert left == {old: 1, recent: 5}  # the old run keeps its done alone
            assert session.scalar(select(RunEvent.type).where(RunEvent.run_id == old)) == "done"
            assert session.get(Run, old).events_purged_at is not None
            assert session.scalar(select(func.count()).select_from(Draft)) == 1
            assert session.scalar(select(func.count()).select_from(Progress)) == 1
            # Again: nothing more to do.
            assert purge(session, keep_days=30, budget_bytes=10**9, now=NOW).runs == 0
    finally:
        engine.dispose()


def test_a_learner_past_the_budget_loses_the_oldest_runs_first(database: str) -> None:
    engine = make_engine(database)
    try:
        with make_sessionmaker(engine)() as session:
            heavy = create_user(session=session, email="h@example.com", password="long enough")
            light = create_user(session=session, email="l@example.com", password="long enough")
            runs = [_run(session, heavy.id, days) for days in (5, 3, 1)]  # ~300 kB each
            spared = _run(session, light.id, 5)
            purge(session, keep_days=30, budget_bytes=700_000, now=NOW)
            purged = {r for r in (*runs, spared) if session.get(Run, r).events_purged_at}
            assert purged == {runs[0]}  # the oldest, enough to be under the budget
    finally:
        engine.dispose()


def test_torchdojo_purge_does_it_by_hand(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    migrate(url)
    engine = make_engine(url)
    with make_sessionmaker(engine)() as session:
        user = create_user(session=session, email="c@example.com", password="long enough")
        _run(session, user.id, 400)
    engine.dispose()
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "purge", "--days", "90"],
        env={**os.environ, "TORCHDOJO_DATABASE_URL": url, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "purged 4 events" in done.stdout and "accounts are kept" in done.stdout
