# Tries: a fork bomb, to exhaust the host's process table.
# Expect: timeout, error
import os

children = 0
while True:
    try:
        if os.fork() == 0:
            while True:
                try:
                    os.fork()
                except OSError:
                    pass
        children += 1
    except OSError:
        pass
