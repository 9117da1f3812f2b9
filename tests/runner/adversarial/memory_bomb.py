# Tries: to take all of the host's memory, 64 MiB at a time, touching every page.
# Expect: memory_limit
blocks = []
while True:
    blocks.append(bytearray(64 * 1024 * 1024))
    print("allocated", len(blocks) * 64, "MiB", flush=True)
