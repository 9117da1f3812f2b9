# Tries: to kill the sandbox's supervisor: the parent process, pid 1, and every process it can
# signal (kill -1). The service must carry on; this run ends as an error (it killed itself).
# Expect: error, completed
import os
import signal

for target in (os.getppid(), 1):
    try:
        os.kill(target, signal.SIGKILL)
        print("ESCAPED: signalled", target)
    except OSError as exc:
        print("blocked", target, type(exc).__name__)
os.kill(-1, signal.SIGKILL)
