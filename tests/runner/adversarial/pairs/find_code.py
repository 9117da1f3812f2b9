# Tries (second of a pair, right after remember_code.py from the same zygote): to learn the
# previous job's code by reading every readable page of its own memory. The zygote never sees a
# job (the runner writes each one straight into its sandbox), so no trace of it can be here.
# The secret is known only by its hash.
import hashlib
import re

WANTED = "{SECRET_HASH}"
CHUNK = 8 << 20
pattern = re.compile(rb"{PREFIX}[0-9a-f]{32}")
hits = 0
with open("/proc/self/maps") as maps:
    regions = [line.split() for line in maps]
with open("/proc/self/mem", "rb", buffering=0) as memory:
    for region in regions:
        start, end = (int(x, 16) for x in region[0].split("-"))
        if "r" not in region[1] or (len(region) > 5 and region[5].startswith("[v")):
            continue
        tail = b""
        for offset in range(start, end, CHUNK):
            try:
                memory.seek(offset)
                data = tail + memory.read(min(CHUNK, end - offset))
            except (OSError, OverflowError, ValueError):
                break
            for match in pattern.finditer(data):
                if hashlib.sha256(match.group()).hexdigest() == WANTED:
                    hits += 1
            tail = data[-64:]
print("ESCAPED: found the previous job's code" if hits else "no trace of the previous job")
