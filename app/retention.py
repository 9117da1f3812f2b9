"""What is kept, and for how long: run events (figures are most of their bytes) go after
`keep_run_events_days`, and sooner for a learner past `run_events_budget_mb`, oldest runs
first. Each purged run keeps its row (code, status, check counts) and its `done` event, so
history still says how it ended. Drafts, progress and accounts are never purged.

`torchdojo purge` does it by hand; the web app does it every `purge_every_s` while it runs
(every web process may: a purge is idempotent).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from app.models import Run, RunEvent


@dataclass
class PurgeReport:
    runs: int = 0  # runs whose events were purged
    events: int = 0
    bytes: int = 0

    def __str__(self) -> str:
        return (
            f"purged {self.events} events ({self.bytes / 1e6:.1f} MB) of {self.runs} runs; "
            "drafts, progress and accounts are kept"
        )


def purge(
    session: Session, *, keep_days: float, budget_bytes: int, now: datetime | None = None
) -> PurgeReport:
    """Purge the events of finished runs older than `keep_days`, then of each learner's oldest
    runs while their stored events are over `budget_bytes`."""
    now = now or datetime.now(UTC)
    report = PurgeReport()
    stale = select(Run.id, Run.events_bytes).where(
        Run.events_purged_at.is_(None),
        Run.status != "running",
        Run.created_at < now - timedelta(days=keep_days),
    )
    for run_id, size in session.execute(stale).all():
        _purge_run(session, run_id, size, now, report)
    heavy = (
        select(Run.user_id)
        .where(Run.events_purged_at.is_(None))
        .group_by(Run.user_id)
        .having(func.sum(Run.events_bytes) > budget_bytes)
    )
    for (user_id,) in session.execute(heavy).all():
        runs = session.execute(
            select(Run.id, Run.events_bytes)
            .where(
                Run.user_id == user_id,
                Run.events_purged_at.is_(None),
                Run.status != "running",
            )
            .order_by(Run.created_at)
        ).all()
        total = sum(size or 0 for _, size in runs)
        for run_id, size in runs:
            if total <= budget_bytes:
                break
            _purge_run(session, run_id, size, now, report)
            total -= size or 0
    session.commit()
    return report


def _purge_run(
    session: Session, run_id: str, size: int | None, now: datetime, report: PurgeReport
) -> None:
    removed = session.execute(
        delete(RunEvent).where(RunEvent.run_id == run_id, RunEvent.type != "done")
    ).rowcount  # type: ignore[attr-defined]
    session.execute(
        update(Run).where(Run.id == run_id).values(events_purged_at=now, events_bytes=0)
    )
    report.runs += 1
    report.events += int(removed or 0)
    report.bytes += int(size or 0)
