# Tries: to sleep past the wall-clock limit (no CPU used, so only the wall clock can stop it).
# Expect: timeout
import time

print("sleeping", flush=True)
time.sleep(10_000)
