# Tries: to kill the sandbox's supervisor: the parent process, pid 1, and every process it can
# signal (kill -1). The service must carry on. Linux's kill(-1) spares the caller and the pid
# namespace's init, and there is nothing else in the sandbox: it fails with ESRCH, so the run
# ends as the learner's error (ProcessLookupError), never as the runner's.
# Expect: error
import os
import signal

for target in (os.getppid(), 1):
    try:
        os.kill(target, signal.SIGKILL)
        print("ESCAPED: signalled", target)
    except OSError as exc:
        print("blocked", target, type(exc).__name__)
os.kill(-1, signal.SIGKILL)
