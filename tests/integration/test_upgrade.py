"""A plugin replaced under a running supervisor (what `plugbox install`
does over an existing plugin): calls in flight finish on the old version,
new calls go to the new one, and no call fails because of the swap.

The swap here is the installer's own move, done by the test:
renameat2(RENAME_EXCHANGE) of a staged directory with PLUGINS/NAME, then
the old tree moved aside. The old tree may be deleted only once no worker
uses it any more: the supervisor holds a shared flock on it until then.
"""

import ctypes
import errno
import fcntl
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from pbserve import serve, sockdir  # noqa: F401 (fixtures used by name)

AT_FDCWD = -100
RENAME_EXCHANGE = 2
_libc = ctypes.CDLL(None, use_errno=True)

PLUGIN = '''
import time
import plugbox

VERSION = "{version}"
__version__ = "{version}"


@plugbox.export
def version():
    return VERSION


@plugbox.export
def slow_then_late(seconds):
    """Sleeps, then imports a module of its own directory only now: the
    old version's files must still be there for a call in flight."""
    time.sleep(seconds)
    from . import late
    return [VERSION, late.WHO]
'''


def write_version(root, version):
    root.mkdir(parents=True)
    (root / "__init__.py").write_text(PLUGIN.format(version=version))
    (root / "late.py").write_text(f'WHO = "late module of {version}"\n')
    for p in [root, *root.iterdir()]:
        os.chmod(p, 0o755 if p.is_dir() else 0o644)


def exchange(a, b):
    if _libc.renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), str(a))


class Plugins:
    """A plugins directory with plugin `up`, upgraded as an installer does."""

    def __init__(self, root):
        self.root = root
        self.staging = root / ".plugbox" / "staging"
        self.old = root / ".plugbox" / "old"
        for d in (root, self.staging, self.old):
            d.mkdir(parents=True, exist_ok=True)
            os.chmod(d, 0o755)
        write_version(root / "up", "1")
        self.swaps = 0

    def upgrade(self, version):
        """Stage `version`, swap it in atomically, move the old tree aside;
        returns where the old tree now is."""
        self.swaps += 1
        staged = self.staging / f"up.{self.swaps}"
        write_version(staged, version)
        exchange(staged, self.root / "up")
        aside = self.old / f"up.{self.swaps}"
        os.rename(staged, aside)
        return aside


def locked_by_a_worker(tree):
    fd = os.open(tree, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError as e:
        assert e.errno == errno.EWOULDBLOCK
        return True
    finally:
        os.close(fd)


def answer(conn, id, *call, timeout=30.0):
    conn.call(id, "up", *call)
    env = conn.recv(timeout)
    assert env["id"] == id
    assert env["body"] == "result", f"call {call} failed: {env}"
    return env["value"]


@pytest.fixture
def plugins(scratch):
    return Plugins(scratch / "plugins")


def test_next_call_after_the_swap_goes_to_the_new_version(serve, plugins):
    d = serve(plugins.root)
    c = d.conn()
    assert answer(c, 1, "version") == "1"
    aside = plugins.upgrade("2")
    # The swap has returned: the very next call must see the new version.
    assert answer(c, 2, "version") == "2"
    # The old worker is gone (replaced once idle), so its tree may go.
    deadline = time.monotonic() + 10
    while locked_by_a_worker(aside) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not locked_by_a_worker(aside)
    shutil.rmtree(aside)
    assert answer(c, 3, "version") == "2"
    assert "worker ended" not in d.stderr(), d.stderr()


def test_call_in_flight_finishes_on_the_old_version(serve, plugins):
    d = serve(plugins.root)
    first, second = d.conn(), d.conn()
    assert answer(first, 1, "version") == "1"
    first.call(2, "up", "slow_then_late", 1.5)
    time.sleep(0.5)                                  # the call is running on version 1
    aside = plugins.upgrade("2")
    # The old tree is held for the call in flight: an installer may not delete it.
    assert locked_by_a_worker(aside)
    # A new call, made during the old one, waits its turn and gets version 2.
    second.call(3, "up", "version")
    env = first.recv(30)
    assert env["body"] == "result", env
    assert env["value"] == ["1", "late module of 1"]
    env = second.recv(30)
    assert env["body"] == "result", env
    assert env["value"] == "2"
    deadline = time.monotonic() + 10
    while locked_by_a_worker(aside) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not locked_by_a_worker(aside), "the old worker kept its directory after being replaced"


def test_no_call_fails_while_upgrades_happen(serve, plugins):
    """One client calls without pause while the plugin is upgraded ten
    times: every call answers, versions never go backwards, and after each
    upgrade returns the next call made sees it."""
    d = serve(plugins.root)
    stop = threading.Event()
    seen, failures = [], []

    def caller():
        c = d.conn()
        i = 100
        while not stop.is_set():
            i += 1
            c.call(i, "up", "version")
            env = c.recv(30)
            if env["body"] != "result":
                failures.append(env)
            else:
                seen.append(int(env["value"]))

    t = threading.Thread(target=caller)
    t.start()
    checker = d.conn()
    try:
        for v in range(2, 12):
            time.sleep(0.1)
            plugins.upgrade(str(v))
            assert answer(checker, v, "version") == str(v)
    finally:
        stop.set()
        t.join(60)
    assert not failures, failures
    assert seen == sorted(seen), "a call went to an older version after a newer one answered"
    assert seen[-1] == 11 and len(seen) > 20


def test_removed_plugin_is_not_found_and_returns_when_reinstalled(serve, plugins):
    d = serve(plugins.root)
    c = d.conn()
    assert answer(c, 1, "version") == "1"
    os.rename(plugins.root / "up", plugins.old / "removed")
    c.call(2, "up", "version")
    env = c.recv(30)
    assert env["body"] == "error" and env["kind"] == "not_found", env
    assert "no plugin 'up'" in env["message"]
    write_version(plugins.root / "up", "3")
    assert answer(c, 3, "version") == "3"


def test_plugbox_install_upgrades_a_serving_daemon_without_failing_a_call(plugbox, serve, scratch):
    """The same through `plugbox install` itself: a directory source
    unpacked in its sandbox, swapped in while a call runs on the old one."""
    root = scratch / "plugins"
    root.mkdir()
    os.chmod(root, 0o755)
    sources = scratch / "sources"
    for v in ("1", "2", "3"):
        write_version(sources / f"v{v}" / "up", v)
    cp = plugbox.run(["install", "--plugins", root, sources / "v1" / "up"])
    assert cp.returncode == 0, cp.stderr
    d = serve(root)
    first, second = d.conn(), d.conn()
    assert answer(first, 1, "version") == "1"
    first.call(2, "up", "slow_then_late", 1.5)
    time.sleep(0.5)
    cp = plugbox.run(["install", "--plugins", root, sources / "v2" / "up"])
    assert cp.returncode == 0, cp.stderr
    # The old tree is in use by the call in flight: it is kept, not deleted.
    assert cp.stdout.startswith("installed up 2 (upgraded from 1)"), cp.stdout
    assert "stays in" in cp.stdout, cp.stdout
    assert answer(second, 3, "version") == "2"
    env = first.recv(30)
    assert env["body"] == "result" and env["value"] == ["1", "late module of 1"], env
    # Version 1's tree waited in old/ for its worker; once that worker is
    # replaced, the next install deletes it.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        cp = plugbox.run(["install", "--plugins", root, sources / "v3" / "up"])
        assert cp.returncode == 0, cp.stderr
        if not os.listdir(root / ".plugbox" / "old"):
            break
        time.sleep(0.2)
    assert not os.listdir(root / ".plugbox" / "old"), os.listdir(root / ".plugbox" / "old")
    assert answer(second, 4, "version") == "3"
