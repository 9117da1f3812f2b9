# Tries: to make every check pass by loading its own pytest code: a conftest.py in /tmp, in
# /tmp/.checks (where the checks once lived) and in every folder it can create ahead of them,
# a pytest.ini, and PYTEST_ADDOPTS / PYTEST_PLUGINS pointing at a plugin of its own. Its code
# runs before the checks, in the same process, so it can do all of this; none of it may load.
# Expect: completed
import os
import sys

EVIL = '''
import pytest

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    report.outcome = "passed"
    report.longrepr = None

def pytest_collection_modifyitems(items):
    print("ESCAPED: the learner's pytest code loaded")
'''
for folder in ("/tmp", "/tmp/.checks", "/tmp/.checks-x", "/tmp/checks"):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "conftest.py"), "w") as handle:
        handle.write(EVIL)
with open("/tmp/dojo_evil_plugin.py", "w") as handle:
    handle.write(EVIL)
with open("/tmp/pytest.ini", "w") as handle:
    handle.write("[pytest]\naddopts = -p dojo_evil_plugin\n")
sys.path.insert(0, "/tmp")
os.environ["PYTEST_ADDOPTS"] = "-p dojo_evil_plugin"
os.environ["PYTEST_PLUGINS"] = "dojo_evil_plugin"
answer = 41
