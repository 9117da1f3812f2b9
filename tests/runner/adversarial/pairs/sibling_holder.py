# Tries (first of a pair, running while sibling_prober.py runs beside it): to offer a channel
# a concurrent sandbox could reach: an abstract unix socket, SysV shared memory and a message
# queue, files in /tmp and /dev/shm, a named pipe. It holds them open until it is stopped.
import ctypes
import os
import socket
import time

libc = ctypes.CDLL(None, use_errno=True)
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind("\0dojo-sibling")
listener.listen()
segment = libc.shmget(0xD0D1, 4096, 0o1666)
queue = libc.msgget(0xD0D2, 0o1666)
for path in ("/tmp/dojo-sibling", "/dev/shm/dojo-sibling"):
    with open(path, "w") as handle:
        handle.write("sibling")
os.mkfifo("/tmp/dojo-sibling-fifo")
print("holding", segment, queue, flush=True)
time.sleep(60)
