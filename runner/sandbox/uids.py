"""The host uids of one runner's sandboxes, when it runs as root.

Each job runs as a uid of its own, different from the zygote's and from every other job
running or waiting warm at the same time on this host. A runner leases a block of
`BLOCK_SIZE` uids by holding an exclusive `flock` on a lock file in a folder only root can
write (`RUNNER_STATE_DIR`/uids/N.lock); a second runner on the same host (the web app's
embedded pool beside a runner service, two test suites) takes the next free block. The lock
goes with the process however it ends, so a crashed runner never keeps its block.

An unprivileged runner (the deployed container) has one uid and needs no block: each job gets
its own user namespace, but keeps the runner's uid on the host.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from dataclasses import dataclass, field
from pathlib import Path

BLOCK_SIZE = 1024  # the zygote's uid, then one per sandbox: 2 per pool slot (running, warm)


class UidsExhausted(RuntimeError):
    """Every uid block is leased by another runner on this host."""


@dataclass
class UidBlock:
    """`first` is the zygote's uid; the sandboxes take the others, one each, and give it back
    once everything they ran is gone."""

    first: int
    size: int
    lock_fd: int
    free: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.free = list(range(self.first + 1, self.first + self.size))

    @property
    def zygote_uid(self) -> int:
        return self.first

    def take(self) -> int | None:
        return self.free.pop(0) if self.free else None

    def give(self, uid: int) -> None:
        if self.first < uid < self.first + self.size and uid not in self.free:
            self.free.append(uid)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.lock_fd)


def lease(base: int, blocks: int, state_dir: str) -> UidBlock:
    """The first free block of uids from `base` on, held until this process ends or closes it."""
    folder = Path(state_dir) / "uids"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    for index in range(blocks):
        fd = os.open(folder / f"{index}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return UidBlock(first=base + index * BLOCK_SIZE, size=BLOCK_SIZE, lock_fd=fd)
    raise UidsExhausted(
        f"all {blocks} blocks of sandbox uids from {base} on are held by other runners on "
        f"this host (lock files in {folder}); raise RUNNER_UID_BLOCKS or stop one of them"
    )
