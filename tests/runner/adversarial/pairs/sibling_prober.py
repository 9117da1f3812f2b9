# Tries (second of a pair, while sibling_holder.py runs beside it): to reach the concurrent
# sandbox through any channel it offers, or to see its processes. Each sandbox has its own
# network, IPC, mount and pid namespaces and its own /tmp and /dev/shm, so nothing is there.
import ctypes
import os
import socket

libc = ctypes.CDLL(None, use_errno=True)
found = []
try:
    socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).connect("\0dojo-sibling")
    found.append("the abstract socket")
except OSError:
    pass
if libc.shmget(0xD0D1, 0, 0) != -1:
    found.append("SysV shared memory")
if libc.msgget(0xD0D2, 0) != -1:
    found.append("a SysV message queue")
for path in ("/tmp/dojo-sibling", "/dev/shm/dojo-sibling", "/tmp/dojo-sibling-fifo"):
    if os.path.exists(path):
        found.append(path)
pids = [p for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, os.getpid())]
if pids:
    found.append(f"processes {pids}")
print("ESCAPED: reached " + ", ".join(found) if found else "no way to the sibling", flush=True)
