"""Per-plugin uids as root: two supervisors whose plugins hash to the same
uid still run them as different uids, in one process and across processes
(supervisor/jail/uids.c). The collision is real: plugin directories are
chosen whose FNV-1a hash (the start of the search) is the same."""

import os
import subprocess
import sys

import pytest

import plugbox
from pbpy import TEST_TIMEOUT

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="plugin uids are chosen only as root")

BASE, RANGE = 1900000000, 1000000
PLUGIN = '''import os
import plugbox


@plugbox.export
def uid():
    return os.getuid()
'''


def start_uid(key):
    h = 2166136261
    for b in key.encode():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return BASE + h % RANGE


@pytest.fixture
def colliding(scratch):
    """Two plugins directories, each with plugin 'who', whose uids would
    start at the same place."""
    seen = {}
    for i in range(20000):
        d = scratch / f"set{i}"
        uid = start_uid(f"{d}/who")
        if uid in seen:
            dirs = [seen[uid], d]
            break
        seen[uid] = d
    else:   # pragma: no cover - 20000 draws from 10**6 collide with p > 0.999
        pytest.fail("no collision found")
    for d in dirs:
        (d / "who").mkdir(parents=True)
        (d / "who" / "__init__.py").write_text(PLUGIN)
        os.chmod(d, 0o755)
        os.chmod(d / "who", 0o755)
        os.chmod(d / "who" / "__init__.py", 0o644)
    return dirs, uid


def test_two_supervisors_in_one_process_get_different_uids(colliding):
    (a, b), start = colliding
    with plugbox.Supervisor(a, timeout=TEST_TIMEOUT) as one, plugbox.Supervisor(b, timeout=TEST_TIMEOUT) as two:
        first, second = one.call("who", "uid"), two.call("who", "uid")
    # The first takes the uid its hash names (or the next free one, when a
    # supervisor elsewhere on this machine holds it); the second moves on.
    assert first != second, (first, second)
    assert start <= first < start + 16 and start <= second < start + 16, (start, first, second)


HOST = """
import sys, plugbox
with plugbox.Supervisor(sys.argv[1], timeout=20) as sup:
    print(sup.call("who", "uid"), flush=True)
    sys.stdin.read()
"""


def test_a_uid_held_by_another_process_is_skipped_and_freed_at_its_end(colliding):
    (a, b), start = colliding
    host = subprocess.Popen([sys.executable, "-c", HOST, str(a)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        theirs = int(host.stdout.readline())
        with plugbox.Supervisor(b, timeout=TEST_TIMEOUT) as sup:
            ours = sup.call("who", "uid")
        assert ours != theirs, (ours, theirs)
    finally:
        host.kill()
        host.wait()
        host.stdin.close()
        host.stdout.close()
    # Its claim ended with it: the hash's own uid is free again.
    if theirs == start:
        with plugbox.Supervisor(b, timeout=TEST_TIMEOUT) as sup:
            assert sup.call("who", "uid") == start


def test_the_lock_file_is_roots_alone():
    st = os.stat("/run/plugbox/uids.lock")
    assert st.st_uid == 0 and st.st_mode & 0o077 == 0, oct(st.st_mode)
