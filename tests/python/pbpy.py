"""Helpers for the tests of the Python host package (tests/python)."""

import contextlib
import os
import sys
import time

# The integration tests' helpers (tests/integration/pbtest.py) serve here too.
# Appended, not prepended: both directories hold a test_values.py.
sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from pbtest import worker_pids  # noqa: E402,F401  (re-exported for the tests)

# Seconds; the deadline of every supervisor the tests open, so a test that
# goes wrong fails instead of hanging.
TEST_TIMEOUT = 20.0


def wait_until(predicate, seconds=10.0, step=0.02):
    """Poll predicate() until it is true; its last value."""
    end = time.monotonic() + seconds
    while True:
        value = predicate()
        if value or time.monotonic() > end:
            return value
        time.sleep(step)


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@contextlib.contextmanager
def catch_unraisable():
    """The exceptions reported to sys.unraisablehook inside the block (which
    then do not fail the test)."""
    seen = []
    old = sys.unraisablehook
    sys.unraisablehook = seen.append
    try:
        yield seen
    finally:
        sys.unraisablehook = old
