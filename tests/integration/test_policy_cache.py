"""A supervisor keeps a plugin's parsed policy between worker starts
(supervisor/policy/policy_cache.c). These tests prove that an edit still
takes effect at the next start: of the plugin's own policy, and of a file
it @includes, even when the edit keeps the file's size and modification
time (the cache compares the bytes). One daemon, in each spawn mode that
starts workers anew; its workers stop when idle (--idle-stop) and the next
call starts a new one.

The plugin is tests/plugins/policy/actions: getppid() makes the raw
syscall and returns the errno the policy gave it. x86_64 syscall numbers.
"""

import os
import time

import pytest

from pbserve import serve, sockdir  # noqa: F401 (fixtures used by name)
from pbtest import worker_pids, x86_64_only

pytestmark = x86_64_only

EPERM, EBADF, EXDEV = 1, 9, 18


def rewrite_keeping_mtime(path, text):
    """Write text over path, then give it back its old times: only its
    bytes say it changed."""
    before = os.stat(path)
    assert len(text.encode()) == before.st_size, "the edit must keep the size"
    path.write_text(text)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def getppid_errno(conn, call_id):
    conn.call(call_id, "actions", "getppid")
    reply = conn.recv(timeout=60)
    assert reply.get("body") == "result", reply
    return reply["value"]["errno"]


def plugin_workers(d):
    """The daemon's workers, not its fork-server (also a plugbox-worker)."""
    found = []
    for pid in worker_pids(d.pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"--fork-server" not in f.read().split(b"\0"):
                    found.append(pid)
        except OSError:
            pass
    return found


def wait_idle_stop(d):
    deadline = time.monotonic() + 20
    while plugin_workers(d) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert plugin_workers(d) == [], "the idle worker did not stop:\n" + d.stderr()


@pytest.mark.parametrize("spawn", ["exec", "fork-server"])
def test_policy_edits_take_effect_at_the_next_start(serve, copy_plugins, policies_with, paths, spawn):
    plugins = copy_plugins(paths.plugins / "policy", only=["actions"])
    pol = policies_with(actions="#getppid: return EXDEV\n@include base\n",
                        base="getppid: return EPERM\n@include default\n")
    d = serve(plugins, "--policies", pol, "--spawn", spawn, "--idle-stop", "0.3")
    conn = d.conn()

    assert getppid_errno(conn, 1) == EPERM
    wait_idle_stop(d)
    assert getppid_errno(conn, 2) == EPERM              # started again, nothing changed

    # A file the policy includes, same size and mtime: EPERM -> EBADF.
    wait_idle_stop(d)
    rewrite_keeping_mtime(pol / "base.policy", "getppid: return EBADF\n@include default\n")
    assert getppid_errno(conn, 3) == EBADF

    # The plugin's own policy, same size and mtime: its rule, uncommented,
    # comes before what it includes.
    wait_idle_stop(d)
    rewrite_keeping_mtime(pol / "actions.policy", " getppid: return EXDEV\n@include base\n")
    assert getppid_errno(conn, 4) == EXDEV
