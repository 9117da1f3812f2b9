# Tries: to write outside the scratch space: the root, /usr, /etc, the harness, the Python
# install, /opt, /dev (one /dev is shared by every job of a zygote, so it must be read-only);
# and to change permissions of what is bound read-only.
# Expect: completed
import os
import sys

targets = ["/evil", "/usr/evil", "/etc/evil", "/opt/dojo/harness/job.py", "/dev/evil",
           "/dev/pts/evil", "/var/evil", "/home/evil",
           os.path.join(sys.prefix, "evil"), os.path.join(os.path.dirname(os.__file__), "evil.py")]
for path in targets:
    try:
        with open(path, "a") as handle:
            handle.write("x")
        print("ESCAPED: wrote", path)
    except OSError as exc:
        print("blocked", path, type(exc).__name__)
try:
    os.chmod("/opt/dojo/harness/job.py", 0o777)
    print("ESCAPED: chmod")
except OSError as exc:
    print("blocked chmod", type(exc).__name__)
with open("/tmp/fine.txt", "w") as handle:
    handle.write("scratch is writable")
print("scratch ok")
