"""Per-run limits and the chart's throttling, through the real sandbox: a job's own tmpfs and
process limits below the pool's, report() and the captured losses sending a bounded number of
points, the seccomp filter in force, and output streamed before the run ends."""

from __future__ import annotations

import time

from runner.protocol import SandboxLimits
from tests.support.runner import PoolDriver, done_of, output_of

FULL_DETAIL_STEPS = 200  # runner/harness/capture.py
INTERVAL_S = 0.05


def _metrics(events, name: str, split: str | None = None):
    return [e for e in events if e.type == "metric" and e.name == name and e.split == split]


def _bound(events) -> int:
    """The most points one curve may send over this run: every step of the first 200, then
    one per interval, and the final flush."""
    seconds = events[-1].t - events[0].t
    return FULL_DETAIL_STEPS + int(seconds / INTERVAL_S) + 2


def test_report_is_throttled_and_history_keeps_every_value(pool: PoolDriver) -> None:
    code = (
        "from dojo import history, report\n"
        "for step in range(100_000):\n"
        "    report(step=step, accuracy=step / 100_000)\n"
        "print(len(history('accuracy')))\n"
    )
    events = pool.run(code)
    assert done_of(events).status == "completed", output_of(events, "stderr")
    assert output_of(events) == "100000\n"  # each call recorded once (it was twice)
    points = _metrics(events, "accuracy")
    assert FULL_DETAIL_STEPS < len(points) <= _bound(events), len(points)
    assert len(points) < 2_000
    # Full detail first, then means over the steps since the previous point; the last step
    # always shows.
    assert [p.step for p in points[:FULL_DETAIL_STEPS]] == list(range(FULL_DETAIL_STEPS))
    assert points[-1].step == 99_999
    steps = [p.step for p in points]
    assert steps == sorted(steps)
    assert points[-2].value < points[-1].value < 1.0  # a mean of the last steps


def test_captured_loss_is_throttled_per_split(pool: PoolDriver) -> None:
    code = (
        "import torch\n"
        "from torch import nn\n"
        "from dojo import history\n"
        "loss_fn = nn.MSELoss()\n"
        "x, y = torch.zeros(2), torch.ones(2)\n"
        "for step in range(5_000):\n"
        "    loss_fn(x, y)\n"
        "    if step % 10 == 0:\n"
        "        with torch.no_grad():\n"
        "            loss_fn(x, y * 2)\n"
        "print(len(history('loss', 'train')), len(history('loss', 'val')))\n"
    )
    events = pool.run(code)
    assert done_of(events).status == "completed", output_of(events, "stderr")
    train, val = _metrics(events, "loss", "train"), _metrics(events, "loss", "val")
    assert FULL_DETAIL_STEPS < len(train) <= _bound(events) and len(train) < 5_000
    assert [p.step for p in train[:FULL_DETAIL_STEPS]] == list(range(1, FULL_DETAIL_STEPS + 1))
    assert train[-1].step == 5_000 and all(p.value == 1.0 for p in train)
    # Losses under no_grad are the val curve, with steps of their own.
    assert val and val[-1].step == 500 and all(p.value == 4.0 for p in val)
    assert len(val) <= _bound(events)
    # history() holds the points the chart got (all but the final flush, after the print).
    seen_train, seen_val = map(int, output_of(events).split())
    assert len(train) - 1 <= seen_train <= len(train) and len(val) - 1 <= seen_val <= len(val)


def test_a_jobs_smaller_tmpfs_limit_stops_it(pool: PoolDriver) -> None:
    code = (
        "import time\n"
        "chunk = b'x' * (1024 * 1024)\n"
        "with open('/tmp/big', 'wb') as handle:\n"
        "    for n in range(40):\n"
        "        handle.write(chunk)\n"
        "        handle.flush()\n"
        "print('wrote 40 MiB', flush=True)\n"
        "time.sleep(5)\n"
        "print('ESCAPED')\n"
    )
    events = pool.run(code, limits=SandboxLimits(wall_s=20, tmpfs_mb=16))
    done = done_of(events)
    assert done.status == "memory_limit", (done, output_of(events, "stderr"))
    assert done.error is not None and done.error.type == "FilesLimit"
    assert "16 MiB files limit" in done.error.message
    assert "ESCAPED" not in output_of(events)
    # Stopped by the files limit while it wrote or slept, never at the 20 s wall clock.
    assert done.t - events[0].t < 15


def test_a_jobs_process_limit_applies_inside_it(pool: PoolDriver) -> None:
    code = (
        "import os, time\n"
        "children, refused = [], 0\n"
        "for _ in range(20):\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError:\n"
        "        refused += 1\n"
        "        continue\n"
        "    if pid == 0:\n"
        "        time.sleep(3)\n"
        "        os._exit(0)\n"
        "    children.append(pid)\n"
        "print(len(children), refused)\n"
        "for pid in children:\n"
        "    os.waitpid(pid, 0)\n"
    )
    events = pool.run(code, limits=SandboxLimits(wall_s=20, processes=8))
    assert done_of(events).status == "completed", output_of(events, "stderr")
    started, refused = map(int, output_of(events).split())
    assert started + refused == 20
    assert started < 8 and refused > 12, (started, refused)


def test_seccomp_filter_is_in_force(pool: PoolDriver) -> None:
    code = (
        "import ctypes, errno, os\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "for name, call in [('unshare', lambda: libc.unshare(0x10000000)),\n"
        "                   ('ptrace', lambda: libc.ptrace(0, 0, None, None)),\n"
        "                   ('keyctl', lambda: libc.syscall(250, 0, 0, 0, 0))]:\n"
        "    ctypes.set_errno(0)\n"
        "    result = call()\n"
        "    print(name, result, errno.errorcode.get(ctypes.get_errno(), ctypes.get_errno()))\n"
    )
    events = pool.run(code)
    assert done_of(events).status == "completed", output_of(events, "stderr")
    lines = output_of(events).splitlines()
    assert lines == ["unshare -1 EPERM", "ptrace -1 EPERM", "keyctl -1 EPERM"], lines


def test_output_streams_before_done(pool: PoolDriver) -> None:
    """What the code prints reaches the caller while it still runs, not at the end."""
    code = "import time\nprint('early', flush=True)\ntime.sleep(1.5)\nprint('late')\n"
    request_events = []
    arrived: dict[str, float] = {}

    async def collect() -> None:
        from runner.protocol import RunRequest

        async for event in pool.pool.run(RunRequest(code=code)):
            request_events.append(event)
            if event.type == "output" and "early" in event.text:
                arrived.setdefault("early", time.monotonic())
            if event.type == "done":
                arrived["done"] = time.monotonic()

    pool.call(collect())
    assert done_of(request_events).status == "completed"
    early = next(e for e in request_events if e.type == "output" and "early" in e.text)
    assert request_events[-1].t - early.t >= 1.0  # stamped as it happened
    assert arrived["done"] - arrived["early"] >= 1.0  # and handed over as it happened
