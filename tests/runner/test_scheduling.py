"""The fair queue, on its own: round-robin by owner, least recently served first."""

from __future__ import annotations

from runner.scheduling import FairQueue, Waiter


def _queue(*owners: str) -> tuple[FairQueue, list[Waiter]]:
    queue = FairQueue()
    waiters = [Waiter.for_owner(owner) for owner in owners]
    for waiter in waiters:
        queue.add(waiter)
    return queue, waiters


def anyone(owner: str) -> bool:
    return True


def test_one_owners_burst_does_not_hold_up_another() -> None:
    queue, (a1, a2, a3, b1) = _queue("a", "a", "a", "b")
    assert queue.pop(anyone) is a1
    # a has had a turn: b goes next, though three of a's runs came first.
    assert queue.order(anyone) == [b1, a2, a3]
    assert queue.pop(anyone) is b1
    assert queue.pop(anyone) is a2
    assert queue.pop(anyone) is a3
    assert queue.pop(anyone) is None and len(queue) == 0


def test_an_owner_keeps_its_place_after_its_line_empties() -> None:
    """a is served, its line empties, and a new run of a's arrives: b, waiting, still goes
    first (least recently served, not first in some list)."""
    queue, (a1,) = _queue("a")
    assert queue.pop(anyone) is a1
    b1 = Waiter.for_owner("b")
    queue.add(b1)
    a2 = Waiter.for_owner("a")
    queue.add(a2)
    assert queue.order(anyone) == [b1, a2]
    assert queue.pop(anyone) is b1


def test_owners_at_their_limit_wait_and_are_placed_last() -> None:
    queue, (a1, b1, b2) = _queue("a", "b", "b")
    not_a = lambda owner: owner != "a"  # noqa: E731  a already runs as many as it may
    assert queue.order(not_a) == [b1, b2, a1]
    assert queue.pop(not_a) is b1
    assert queue.pop(not_a) is b2
    assert queue.pop(not_a) is None
    assert queue.pop(anyone) is a1


def test_runs_without_an_owner_are_each_their_own_line() -> None:
    queue, (x, y, a) = _queue("", "", "a")
    assert queue.order(anyone) == [x, y, a]
    assert x.owner != y.owner


def test_a_removed_waiter_leaves_no_trace() -> None:
    queue, (a1, b1, a2) = _queue("a", "b", "a")
    queue.remove(b1)
    queue.remove(b1)  # twice is harmless
    assert queue.order(anyone) == [a1, a2] and len(queue) == 2


def test_positions_change_only_when_they_change() -> None:
    waiter = Waiter.for_owner("a")
    waiter.move_to(2)
    assert waiter.changed.is_set() and waiter.position == 2
    waiter.changed.clear()
    waiter.move_to(2)
    assert not waiter.changed.is_set()
    waiter.move_to(1)
    assert waiter.changed.is_set()
