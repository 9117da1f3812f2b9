# Tries: to flood the output stream and the service's memory with endless printing.
# Expect: output_limit
line = "x" * 1000
while True:
    print(line)
