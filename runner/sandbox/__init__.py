"""The sandbox, one module per layer (see docs/runner-protocol.md, "The zygote"):

- `command`: the zygote's bubblewrap command, a pure function a test can read;
- `seccomp`: the zygote's filter and the job's, compiled here;
- `cgroups`: a job's cgroup, v1 or v2 behind one interface;
- `uids`: the block of host uids a root runner's jobs run as;
- `pipes`: pipes, framing and the control sockets;
- `run_state`: one run's state, its clock and its `done`;
- `zygote`: the zygote process; `sandbox`: one warm, single-use sandbox it made.

What runs inside the sandbox is the harness (runner/harness/).
"""

from runner.sandbox.command import SandboxUnavailable, require_bubblewrap
from runner.sandbox.run_state import RunClock, internal_error
from runner.sandbox.sandbox import Sandbox, SandboxStartError
from runner.sandbox.zygote import Zygote

__all__ = [
    "RunClock",
    "Sandbox",
    "SandboxStartError",
    "SandboxUnavailable",
    "Zygote",
    "internal_error",
    "require_bubblewrap",
]
