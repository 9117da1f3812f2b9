"""Runs in the database: every step a run takes there, as plain functions on a session.

The database is the state every web process shares: which runs are going and who drives them
(`runs.driver`, with a heartbeat), each learner's rate of starts, every event as it streams.
So any process can start a run (taking the learner's row lock first, so two quick clicks on two
replicas cannot both become the active run), follow any run, and end one whose driver died.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from app.fanout import Fanout
from app.models import Progress, Run, RunEvent, User
from app.runners import RUNNER_FAILED
from runner import Done, ErrorInfo

STALE_S = 15.0  # a driver silent this long is gone: its runs are ended by whoever looks
SERVER_RESTARTED = "The server restarted while your code ran"


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"You started many runs in the last minute. Try again in {retry_after} s.")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Going:
    """A learner's run still going when they start another: who drives it, and if alive."""

    run_id: str
    driver: str | None
    alive: bool


def now() -> datetime:
    return datetime.now(UTC)


def aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment and moment.tzinfo is None else moment


def create(session: Session, run: Run, *, runs_per_minute: int) -> list[Going]:
    """Insert `run` (and the learner's progress row); returns the learner's runs still going,
    for the caller to supersede. Raises RateLimited past `runs_per_minute`."""
    # The learner's row, locked (PostgreSQL) until commit: starts of one learner take turns.
    session.execute(select(User.id).where(User.id == run.user_id).with_for_update())
    since = now() - timedelta(seconds=60)
    count, first = session.execute(
        select(func.count(), func.min(Run.created_at)).where(
            Run.user_id == run.user_id, Run.created_at > since
        )
    ).one()
    if count >= runs_per_minute:
        oldest = aware(first) or now()
        raise RateLimited(int(60 - (now() - oldest).total_seconds()) + 1)
    going = [
        Going(row.id, row.driver, _alive(row.heartbeat_at))
        for row in session.execute(
            select(Run.id, Run.driver, Run.heartbeat_at).where(
                Run.user_id == run.user_id, Run.status == "running"
            )
        )
    ]
    session.add(run)
    progress(session, run.user_id, run.lesson_key)
    session.commit()
    return going


def progress(session: Session, user_id: int, lesson_key: str) -> Progress:
    """The learner's progress row on the lesson, made ("started") on their first run."""
    row = session.scalar(
        select(Progress).where(Progress.user_id == user_id, Progress.lesson_key == lesson_key)
    )
    if row is None:
        row = Progress(user_id=user_id, lesson_key=lesson_key, status="started")
        session.add(row)
    return row


def _alive(heartbeat: datetime | None) -> bool:
    beat = aware(heartbeat)
    return beat is not None and (now() - beat).total_seconds() < STALE_S


def delete(session: Session, run_id: str) -> None:
    run = session.get(Run, run_id)
    if run is not None:
        session.delete(run)
        session.commit()


def store(session: Session, fanout: Fanout, batches: dict[str, list[dict[str, Any]]]) -> None:
    """Store the events of several runs in one transaction (app/runs/writer.py), count their
    bytes (the retention budget), and tell every web process (in the same transaction: never
    before the events are there)."""
    import json

    rows = [
        {"run_id": run_id, "seq": e["seq"], "type": e["type"], "data": e}
        for run_id, events in batches.items()
        for e in events
    ]
    # Core, on the tables: one executemany each, no ORM objects to build.
    events_table, runs = cast(Table, RunEvent.__table__), cast(Table, Run.__table__)
    session.execute(insert(events_table), rows)
    # In the order of their ids, as every transaction that updates several runs locks them
    # (the heartbeat too): two in opposite orders would deadlock.
    sizes = [
        {"run": run_id, "size": sum(len(json.dumps(e, separators=(",", ":"))) for e in events)}
        for run_id, events in sorted(batches.items())
    ]
    session.execute(
        update(runs)
        .where(runs.c.id == bindparam("run"))
        .values(events_bytes=runs.c.events_bytes + bindparam("size")),
        sizes,
    )
    fanout.say_many(session, "events", list(batches))
    session.commit()


def settle(session: Session, run: Run, done: dict[str, Any]) -> None:
    """The run's final status, and the learner's progress on the lesson."""
    tests = done.get("tests")
    stored = session.get(Run, run.id)
    if stored is None:
        return
    stored.status = done["status"]
    stored.finished_at = now()
    if tests is not None:
        stored.tests_passed = tests["passed"]
        stored.tests_total = tests["passed"] + tests["failed"] + tests["errors"]
    learner = progress(session, run.user_id, run.lesson_key)
    if run.mode == "check" and tests is not None:
        all_green = (
            done["status"] == "completed"
            and tests["passed"] > 0
            and not (tests["failed"] or tests["errors"])
        )
        if all_green:
            learner.status = "passed"
        else:
            learner.failed_checks = (learner.failed_checks or 0) + 1
    learner.updated_at = now()
    session.commit()


def heartbeat(session: Session, driver: str, run_ids: list[str]) -> None:
    """This driver is alive, and still drives these runs."""
    if run_ids:
        # Locked in the order of their ids first, as the event writer locks them (store).
        session.execute(
            select(Run.id).where(Run.id.in_(run_ids)).order_by(Run.id).with_for_update()
        ).all()
        session.execute(update(Run).where(Run.id.in_(run_ids)).values(heartbeat_at=now()))
        session.commit()


def events_after(
    session: Session, fanout: Fanout, run_id: str, after_seq: int
) -> list[dict[str, Any]]:
    """A run's stored events after `after_seq`. A run whose driver is gone but that never stored
    its `done` gets one now, so no browser waits forever; a `done` is sent even when the browser
    has seen past its number (it saw events the dead driver never stored)."""
    query = (
        select(RunEvent.data)
        .where(RunEvent.run_id == run_id, RunEvent.seq > after_seq)
        .order_by(RunEvent.seq)
    )
    rows = list(session.scalars(query).all())
    if any(row["type"] == "done" for row in rows):
        return rows
    stored_done = session.scalar(
        select(RunEvent.data).where(RunEvent.run_id == run_id, RunEvent.type == "done")
    )
    if stored_done is not None:
        if stored_done["seq"] > after_seq:
            # Stored since the first read (each statement sees what is committed by then):
            # read again, so the events stored with it, or just before it, come too.
            return list(session.scalars(query).all())
        return [*rows, stored_done]  # numbered below what the browser saw (a dead driver)
    run = session.get(Run, run_id)
    if run is not None and run.status == "running" and not _alive(run.heartbeat_at):
        rows.append(end_orphan(session, fanout, run))
        session.commit()
    return rows


def end_stale(session: Session, fanout: Fanout) -> int:
    """End every run whose driver went quiet (killed): its `done` is an internal_error that
    says the server restarted. Returns how many."""
    cutoff = now() - timedelta(seconds=STALE_S)
    orphans = session.scalars(
        select(Run).where(
            Run.status == "running",
            (Run.heartbeat_at.is_(None)) | (Run.heartbeat_at < cutoff),
        )
    ).all()
    for run in orphans:
        end_orphan(session, fanout, run)
    session.commit()
    return len(orphans)


def end_orphan(session: Session, fanout: Fanout, run: Run) -> dict[str, Any]:
    last = session.scalar(
        select(RunEvent.seq).where(RunEvent.run_id == run.id).order_by(RunEvent.seq.desc()).limit(1)
    )
    created = aware(run.created_at) or now()
    elapsed = (now() - created).total_seconds()
    error = ErrorInfo(type="ServerRestart", message=RUNNER_FAILED.format(what=SERVER_RESTARTED))
    seq = (last if last is not None else -1) + 1
    done = Done.ending(seq, elapsed, "internal_error", error).model_dump(exclude_none=True)
    session.add(RunEvent(run_id=run.id, seq=done["seq"], type="done", data=done))
    run.status = "internal_error"
    run.finished_at = now()
    fanout.say(session, "events", run.id)
    return done


def going_run(session: Session, user_id: int, lesson_key: str) -> dict[str, str] | None:
    """The learner's run of this lesson still going, anywhere, for a reloaded page to follow."""
    row = session.execute(
        select(Run.id, Run.mode, Run.heartbeat_at).where(
            Run.user_id == user_id, Run.lesson_key == lesson_key, Run.status == "running"
        )
    ).first()
    if row is None or not _alive(row.heartbeat_at):
        return None
    return {"id": row.id, "mode": row.mode}
