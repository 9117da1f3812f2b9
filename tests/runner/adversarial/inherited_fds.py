# Tries: to use a descriptor inherited from the zygote or its own set-up: the zygote's control
# socket (which would let it ask for sandboxes, or read another's pipes), the sandbox's own
# control socket, the pipes of other sandboxes. Every open descriptor is listed: only stdin (the
# job, already read to its end), stdout, stderr and the harness's message pipe may be open,
# and no socket at all.
# Expect: completed
import os
import stat

found = {}
for fd in range(0, 4096):
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        continue
    kind = "socket" if stat.S_ISSOCK(mode) else "pipe" if stat.S_ISFIFO(mode) else oct(mode)
    found[fd] = kind
print("open:", found)
sockets = [fd for fd, kind in found.items() if kind == "socket"]
if sockets:
    print("ESCAPED: open sockets", sockets)
extra = [fd for fd in found if fd > 2]
if len(extra) != 1 or found[extra[0]] != "pipe":
    print("ESCAPED: unexpected descriptors", extra)
print("stdin left:", len(os.read(0, 100)))
