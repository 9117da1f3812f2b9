# Tries: to hold a CPU forever with a busy loop.
# Expect: timeout
n = 0
while True:
    n += 1
