# Tries (second of a pair, run right after leave_behind.py from the same zygote): to find
# anything the previous job left. Each job is a fresh fork of the zygote with fresh mounts and
# namespaces, so none of it may be here.
import ctypes
import json
import os
import socket
import sys

import torch

found = []
for path in ("/tmp/dojo-left", "/dev/shm/dojo-left"):
    if os.path.exists(path):
        found.append(path)
if "DOJO_LEFT" in os.environ:
    found.append("environment")
if "/tmp/dojo-path" in sys.path:
    found.append("sys.path")
if torch.nn.Linear is None or json.dumps({}) != "{}":
    found.append("a monkeypatched module")
libc = ctypes.CDLL(None, use_errno=True)
if libc.shmget(0xD0D0, 0, 0) != -1:
    found.append("SysV shared memory")
try:
    socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).connect("\0dojo-left")
    found.append("an abstract socket")
except OSError:
    pass
if os.umask(0o022) == 0:
    found.append("the umask")
print("ESCAPED: found " + ", ".join(found) if found else "nothing left behind", flush=True)
