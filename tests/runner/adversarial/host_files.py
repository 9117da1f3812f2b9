# Tries: to read the host's files and secrets: a database file beside the service (SECRET_FILE),
# /etc/shadow, the init process's environment, the harness's own environment, the home folders.
# Expect: completed
import os

for path in ["{SECRET_FILE}", "/etc/shadow", "/proc/1/environ", "/root/.bashrc", "/home",
             "/proc/self/environ", "/var/lib/postgresql"]:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        if b"{SECRET}" in data:
            print("ESCAPED: read the secret from", path)
        else:
            print("readable but clean", path)
    except OSError as exc:
        print("blocked", path, type(exc).__name__)
if any("{SECRET}" in value for value in os.environ.values()):
    print("ESCAPED: the secret is in the environment")
print("env keys:", sorted(os.environ))
for root, _dirs, files in os.walk("/", onerror=None):
    if root.startswith(("/proc", "/sys", "/usr", "/dev")):
        continue
    for name in files:
        if "{SECRET_NAME}" in name:
            print("ESCAPED: found", os.path.join(root, name))
