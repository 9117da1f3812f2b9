# Tries (first of a pair, run just before look_behind.py from the same zygote): to leave
# something the next job would see: files in /tmp and /dev/shm, an environment variable, a
# changed sys.path, monkeypatched modules (torch.nn.Linear, json.dumps, print), SysV shared
# memory and an abstract unix socket, a changed working folder and umask.
import ctypes
import json
import os
import socket
import sys

import torch

for path in ("/tmp/dojo-left", "/dev/shm/dojo-left"):
    with open(path, "w") as handle:
        handle.write("left behind")
os.environ["DOJO_LEFT"] = "1"
sys.path.insert(0, "/tmp/dojo-path")
torch.nn.Linear = None
json.dumps = lambda *args, **kwargs: "patched"
import builtins

builtins.print = lambda *args, **kwargs: None
libc = ctypes.CDLL(None, use_errno=True)
segment = libc.shmget(0xD0D0, 4096, 0o1666)  # IPC_CREAT | 0666
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind("\0dojo-left")
listener.listen()
os.chdir("/tmp")
os.umask(0o000)
os.write(1, f"left behind (shm {segment})\n".encode())
