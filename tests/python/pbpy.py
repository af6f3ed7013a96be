"""Helpers for the tests of the Python host package (tests/python)."""

import contextlib
import os
import sys
import time

# Seconds; the deadline of every supervisor the tests open, so a test that
# goes wrong fails instead of hanging.
TEST_TIMEOUT = 20.0


def worker_pids(parent=None):
    """The plugbox-worker processes whose parent is `parent` (default: this
    process, which runs the supervisors), seen from the host."""
    parent = os.getpid() if parent is None else parent
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv0 = f.read().split(b"\0")[0]
        except OSError:
            continue
        # a zombie is not a worker any more
        if int(fields[1]) == parent and fields[0] != "Z" and argv0.endswith(b"plugbox-worker"):
            found.append(int(entry))
    return found


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
