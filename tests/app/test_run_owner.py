"""The web app names each learner to the runner by an opaque key, for the runner's fair queue:
the same learner always the same key, two learners two keys, and nothing of the account in it."""

from __future__ import annotations

from app.runs import RunManager
from runner.protocol import RunRequest


def test_owner_keys_are_stable_distinct_and_opaque() -> None:
    manager = RunManager(
        runner=None,  # type: ignore[arg-type]  (no run is started here)
        sessions=None,  # type: ignore[arg-type]
        runs_per_minute=10,
        owner_secret="a-secret-of-the-deployment",
    )
    first, again, other = manager.owner_key(7), manager.owner_key(7), manager.owner_key(8)
    assert first == again and first != other
    assert len(first) == 20 and int(first, 16) != 7  # a digest, not the id
    other_site = RunManager(
        runner=None,  # type: ignore[arg-type]
        sessions=None,  # type: ignore[arg-type]
        runs_per_minute=10,
        owner_secret="another-deployment",
    )
    assert other_site.owner_key(7) != first  # keyed by the deployment's secret
    assert RunRequest(code="", owner=first).owner == first
