# Tries: to reach the zygote (the process every sandbox is forked from, which has torch loaded
# and forks the next learner's sandbox) or any process but its own: lists every pid it can see,
# looks for the zygote by its command line, reads /proc/PID/mem of each, and tries ptrace and
# process_vm_readv on them. Only its own pid namespace is visible (its init, pid 1, and itself);
# init's memory is closed to it, ptrace and process_vm_readv are denied.
# Expect: completed
import ctypes
import os

libc = ctypes.CDLL(None, use_errno=True)
me = os.getpid()
visible = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
print("visible pids:", visible)
if any(pid not in (1, me) for pid in visible):
    print("ESCAPED: sees processes outside its sandbox", visible)
for pid in visible:
    if pid == me:
        continue
    try:
        with open(f"/proc/{pid}/mem", "rb") as handle:
            handle.seek(0x400000)
            handle.read(16)
        print("ESCAPED: read the memory of", pid)
    except OSError as exc:
        print("blocked mem", pid, type(exc).__name__)
    ctypes.set_errno(0)
    if libc.ptrace(16, pid, None, None) == 0:  # PTRACE_ATTACH
        print("ESCAPED: ptrace attached to", pid)
    else:
        print("blocked ptrace", pid, os.strerror(ctypes.get_errno()))


class IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


buffer = ctypes.create_string_buffer(16)
local = IoVec(ctypes.cast(buffer, ctypes.c_void_p), 16)
remote = IoVec(0x400000, 16)
ctypes.set_errno(0)
if libc.process_vm_readv(1, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0) > 0:
    print("ESCAPED: process_vm_readv on init")
else:
    print("blocked process_vm_readv", os.strerror(ctypes.get_errno()))
# Signals: to every pid number a zygote might have (none exists here but init, itself and its
# own threads, whose ids are pids too).
threads = {int(tid) for tid in os.listdir("/proc/self/task")}
for pid in range(2, 4096):
    if pid == me or pid in threads:
        continue
    try:
        os.kill(pid, 0)
        print("ESCAPED: could signal pid", pid)
    except ProcessLookupError:
        pass
    except PermissionError:
        print("ESCAPED: pid", pid, "exists")
