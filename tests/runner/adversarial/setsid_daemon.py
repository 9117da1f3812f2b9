# Tries: to leave a daemon behind: fork, setsid, and sleep on after the job ends, detached from
# everything (the test then looks for "sleep 987654" among the host's processes).
# Expect: completed
import os
import time

if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv("/usr/bin/sleep", ["sleep", "987654"])
    os._exit(0)
time.sleep(0.5)
print("daemon started")
