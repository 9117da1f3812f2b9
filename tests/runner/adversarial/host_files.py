# Tries: to read the host's files and secrets: a database file beside the service (SECRET_FILE),
# /etc/shadow, the init process's environment, the harness's own environment, the home folders.
# The walk skips the trees every sandbox shares read-only (the Python install, its packages:
# thousands of files, slow to walk on a loaded machine) and gets more time than the others.
# Expect: completed
# Limits: wall_s=60
import os
import sys
import sysconfig

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
shared = ("/proc", "/sys", "/usr", "/dev", sys.prefix, sys.base_prefix,
          sysconfig.get_paths()["purelib"])
for root, dirs, files in os.walk("/", onerror=None):
    if root.startswith(shared):
        dirs.clear()
        continue
    for name in files:
        if "{SECRET_NAME}" in name:
            print("ESCAPED: found", os.path.join(root, name))
