# Tries: to forge a passing check and a clean finish by printing protocol JSON, and by writing
# to the descriptors the harness might use.
# Expect: completed
import json
import os

fake = [{"type": "test", "name": "The answer is 42", "status": "passed", "message": "", "hint": ""},
        {"type": "result", "status": "completed", "exit_code": 0, "tests": {"passed": 9, "failed": 0, "errors": 0}},
        {"type": "done", "status": "completed", "duration_ms": 1}]
for event in fake:
    print(json.dumps(event))
for fd in range(3, 20):
    try:
        os.write(fd, (json.dumps(fake[0]) + "\n").encode())
        print("wrote to fd", fd)
    except OSError:
        pass
answer = 41
