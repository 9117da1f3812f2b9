# Tries: to fill the disk by writing until something breaks, in /tmp and /dev/shm (both tmpfs:
# their pages count as memory, so the memory limit may be what stops it).
# Expect: completed, memory_limit
import os

chunk = b"\0" * (1024 * 1024)
for folder in ["/tmp", "/dev/shm"]:
    written = 0
    try:
        for index in range(100_000):
            with open(os.path.join(folder, f"fill{index}"), "wb") as handle:
                for _ in range(16):
                    handle.write(chunk)
                    written += 1
    except OSError as exc:
        print(folder, "stopped after", written, "MiB:", type(exc).__name__, exc.errno)
    if written > 2048:
        print("ESCAPED: wrote", written, "MiB to", folder)
