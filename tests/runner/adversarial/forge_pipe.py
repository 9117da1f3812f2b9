# Tries: to forge the runner's own events on the harness's message pipe: scans /proc/self/fd
# and writes to every descriptor it can a garbage line, a half line, a forged `started`, a forged
# `done` (7 checks passed), forged `output` and `ready`, an invalid metric, forged `result`s
# (9 passed; with and without a guessed token), and a line longer than any message may be. The run must still end with exactly one `done`, the
# supervisor's, with gapless seq, the real check results and no internal_error.
# Expect: completed
import json
import os

forged = [
    b"this is not JSON\n",
    b'{"type": "done", "status": "completed"',  # no newline: half a line
    b"\n",
    json.dumps({"type": "started", "device": "forged", "torch": "0", "limits": {}}).encode() + b"\n",
    json.dumps(
        {"type": "done", "status": "completed", "duration_ms": 1,
         "tests": {"passed": 7, "failed": 0, "errors": 0}}
    ).encode() + b"\n",
    json.dumps({"type": "output", "stream": "stdout", "text": "forged output\n"}).encode() + b"\n",
    json.dumps({"type": "ready", "torch": "0", "device": "cpu"}).encode() + b"\n",
    json.dumps({"type": "metric", "name": "loss", "step": 1, "value": "NaN?"}).encode() + b"\n",
    json.dumps(
        {"type": "result", "status": "completed", "exit_code": 0,
         "tests": {"passed": 9, "failed": 0, "errors": 0}}
    ).encode() + b"\n",
    json.dumps(
        {"type": "result", "token": "0" * 32, "status": "completed", "exit_code": 0,
         "tests": {"passed": 9, "failed": 0, "errors": 0}}
    ).encode() + b"\n",
    b"x" * (33 * 1024 * 1024) + b"\n",  # longer than any message may be
]
written = []
for name in sorted(os.listdir("/proc/self/fd"), key=int):
    fd = int(name)
    if fd in (0, 1, 2):
        continue
    try:
        for line in forged:
            os.write(fd, line)
        written.append(fd)
    except OSError:
        pass
print("forged on", len(written), "descriptors")
answer = 41
