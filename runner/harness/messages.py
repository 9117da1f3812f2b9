"""The message pipe: structured messages to the supervisor, one JSON object a line.

Learner output goes to fd 1 and 2; these messages go to a separate pipe, so nothing the
learner prints can pass for one. The supervisor owns the framing (it numbers, caps and checks
every message), so what this sends is a request, never the final word.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import threading
from typing import Any

_fd = 3  # the job's pipe, until hide() moves it
_lock = threading.Lock()


def send(message: dict[str, Any]) -> None:
    # The leading newline ends any partial line the learner's code may have left in the pipe,
    # so the supervisor reads this message whole (it skips empty lines).
    data = ("\n" + json.dumps(message, separators=(",", ":"), allow_nan=False) + "\n").encode()
    with _lock:
        view = memoryview(data)
        while view:
            written = os.write(_fd, view)
            view = view[written:]


def hide() -> None:
    """Move the pipe away from fd 3 to a random high number, close-on-exec.

    Printing can never reach this pipe (stdout and stderr are other pipes). Learner code runs in
    this same process, so a learner who goes looking can still find it; what they can forge
    that way is their own check result, never another learner's run, the service or the host.
    """
    global _fd
    new_fd = fcntl.fcntl(_fd, fcntl.F_DUPFD_CLOEXEC, random.randint(300, 900))
    os.close(_fd)
    _fd = new_fd
