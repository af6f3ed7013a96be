"""What a supervisor leaves in $TMPDIR when it dies without cleaning up.

A worker without a mount tree (`@layer namespaces off`) has a view
directory of its own in $TMPDIR (its import root: a link to its plugin),
and a `@network connect` worker a .hosts file beside one. A supervisor
killed with SIGKILL cannot remove them: the next supervisor of the same
user removes what its dead siblings left (supervisor/jail/spawn.c), and
nothing of a live one's, nothing of another user's, and follows no link.
Each test has a TMPDIR of its own, so /tmp's state does not matter.
"""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pbserve import Daemon, sockdir  # noqa: F401 (fixture used by name)
from pbtest import EXIT_OK, explain, result_of

NOBODY = 65534


@pytest.fixture
def tmpdir_env(plugbox, scratch):
    tmp = scratch / "tmp"
    tmp.mkdir()
    os.chmod(tmp, 0o1777)        # as /tmp: workers of other uids traverse it
    return tmp, dict(plugbox.env, TMPDIR=str(tmp))


@pytest.fixture
def two_plugins(copy_plugins, paths, policies_with):
    """viewer (no mount tree: a view directory) and netpeer (@network
    connect: a .hosts file), with their policies."""
    target = copy_plugins(paths.plugins / "netconnect")
    shutil.copytree(paths.plugins / "runtime" / "echo20", target / "viewer",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (target / "netpeer" / "deps").mkdir()
    for entry in [*target.iterdir(), target / "netpeer" / "deps"]:
        os.chmod(entry, 0o755)
    pol = policies_with(viewer="@layer namespaces off\n@include default\n",
                        netpeer="@include default\n@network connect 127.0.0.1:9\n")
    return target, pol


def leftovers(tmp):
    """The view directories of viewer (holding its link) and the hosts
    files of netpeer anywhere under tmp, links not followed."""
    views, hosts = set(), set()
    for top, dirs, files in os.walk(tmp):
        for d in dirs:
            p = Path(top) / d
            if d.startswith("plugbox-viewer-") and (p / "viewer").is_symlink():
                views.add(p)
        for f in files:
            if f.startswith("plugbox-netpeer-") and f.endswith(".hosts"):
                hosts.add(Path(top) / f)
    return views, hosts


def wait_for(what, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        got = what()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def start(plugbox, env, plugins, pol, sock, log):
    return Daemon(plugbox.exe, env, plugins, sock, ["--policies", pol, "--eager"], log)


def test_a_killed_supervisors_directories_go_with_the_next_start_a_live_ones_stay(
        plugbox, scratch, sockdir, tmpdir_env, two_plugins):  # noqa: F811
    tmp, env = tmpdir_env
    plugins, pol = two_plugins
    daemons = []
    try:
        def both():
            views, hosts = leftovers(tmp)
            return (views, hosts) if views and hosts else None

        first = start(plugbox, env, plugins, pol, sockdir / "1.sock", scratch / "first.log")
        daemons.append(first)
        dead = wait_for(both)
        assert dead, ("the first supervisor made no view directory and hosts file", first.stderr())
        live = start(plugbox, env, plugins, pol, sockdir / "3.sock", scratch / "live.log")
        daemons.append(live)
        mine = wait_for(lambda: (lambda v, h: (v - dead[0], h - dead[1]) if v - dead[0] and h - dead[1] else None)
                        (*leftovers(tmp)))
        assert mine, ("the live supervisor made no view directory and hosts file", live.stderr())
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait()
        # the attempt is real: the dead one's files are there to be removed
        views, hosts = leftovers(tmp)
        dead = (views - mine[0], hosts - mine[1])
        assert dead[0] and dead[1], (dead, mine)
        second = start(plugbox, env, plugins, pol, sockdir / "2.sock", scratch / "second.log")
        daemons.append(second)
        gone = wait_for(lambda: not any(p.exists() or p.is_symlink() for p in dead[0] | dead[1]))
        assert gone, (dead, leftovers(tmp), second.stderr())
        # the live supervisor's are untouched, links and all
        views, hosts = leftovers(tmp)
        assert mine[0] <= views and mine[1] <= hosts, (mine, views, hosts)
        assert all(os.readlink(v / "viewer") == str(plugins / "viewer") for v in mine[0])
        # nor the dead one's own directory (NS-PID-START), and the live ones
        # are still serving
        run = tmp / f"plugbox-run-{os.geteuid()}"
        assert [e for e in os.listdir(run) if e.split("-")[1] == str(first.pid)] == [], os.listdir(run)
        assert live.proc.poll() is None and second.proc.poll() is None
    finally:
        for d in daemons:
            if d.proc.poll() is None:
                d.proc.kill()
                d.proc.wait()
            d.log.close()


def dead_pid():
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_names_planted_by_others_are_neither_followed_nor_removed(
        plugbox, scratch, sockdir, tmpdir_env, two_plugins):  # noqa: F811
    if os.geteuid() != 0:
        pytest.skip("needs root to make files of another uid")
    tmp, env = tmpdir_env
    plugins, pol = two_plugins
    ns = os.stat("/proc/self/ns/pid").st_ino
    victim = scratch / "victim"
    victim.mkdir()
    (victim / "keep").write_text("x")
    run = tmp / f"plugbox-run-{os.geteuid()}"
    run.mkdir(mode=0o711)
    os.chmod(run, 0o711)

    def dead_dir(name_pid, uid=0):
        d = run / f"{ns}-{name_pid}-1"
        d.mkdir()
        os.chown(d, uid, uid)
        return d

    # as a killed supervisor leaves them: removed
    plain = dead_dir(dead_pid())
    (plain / "plugbox-x-AAAAAA").mkdir()
    (plain / "plugbox-x-AAAAAA" / "x").symlink_to(victim)
    (plain / "plugbox-x-AAAAAA.hosts").write_text("127.0.0.1 localhost\n")
    # a dead-looking name that is a link to someone's directory: not followed
    linked = run / f"{ns}-{dead_pid()}-1"
    linked.symlink_to(victim)
    # another uid's: kept, its contents too
    foreign = dead_dir(dead_pid(), NOBODY)
    (foreign / "plugbox-y-BBBBBB.hosts").write_text("x")
    os.chown(foreign / "plugbox-y-BBBBBB.hosts", NOBODY, NOBODY)
    # ours, but holding what plugbox never makes: that is kept
    odd = dead_dir(dead_pid())
    (odd / "plugbox-z-CCCCCC").mkdir()
    (odd / "plugbox-z-CCCCCC" / "sub").mkdir()
    (odd / "plugbox-z-CCCCCC.hosts").symlink_to(victim / "keep")
    (odd / "notes").write_text("x")
    # a file of another uid inside a view directory of ours: kept
    mixed = dead_dir(dead_pid())
    (mixed / "plugbox-w-DDDDDD").mkdir()
    (mixed / "plugbox-w-DDDDDD" / "w").symlink_to(victim)
    os.lchown(mixed / "plugbox-w-DDDDDD" / "w", NOBODY, NOBODY)

    d = start(plugbox, env, plugins, pol, sockdir / "s.sock", scratch / "serve.log")
    try:
        assert wait_for(lambda: all(leftovers(tmp))), d.stderr()
        assert wait_for(lambda: not plain.exists()), sorted(os.listdir(run))
        assert linked.is_symlink() and (victim / "keep").read_text() == "x"
        assert sorted(os.listdir(victim)) == ["keep"]
        assert (foreign / "plugbox-y-BBBBBB.hosts").exists()
        assert (odd / "plugbox-z-CCCCCC" / "sub").is_dir() and (odd / "notes").exists()
        assert (odd / "plugbox-z-CCCCCC.hosts").is_symlink()
        assert (mixed / "plugbox-w-DDDDDD" / "w").is_symlink()
    finally:
        d.proc.kill()
        d.proc.wait()
        d.log.close()
    # the whole directory planted by another user: used by nobody, and
    # plugbox still starts (its directories flat in $TMPDIR, as before)
    shutil.rmtree(run)
    run.mkdir(mode=0o711)
    os.chown(run, NOBODY, NOBODY)
    planted = run / f"{ns}-{dead_pid()}-1"
    planted.mkdir()
    d = start(plugbox, env, plugins, pol, sockdir / "s2.sock", scratch / "serve2.log")
    try:
        views, hosts = wait_for(lambda: (lambda v, h: (v, h) if v and h else None)(*leftovers(tmp)))
        assert all(v.parent == tmp for v in views) and all(h.parent == tmp for h in hosts), (views, hosts)
        assert planted.is_dir()
    finally:
        d.proc.kill()
        d.proc.wait()
        d.log.close()
    # a link planted at plugbox-run-UID: not followed
    shutil.rmtree(run)
    run.symlink_to(victim)
    d = start(plugbox, env, plugins, pol, sockdir / "s3.sock", scratch / "serve3.log")
    try:
        views, hosts = wait_for(lambda: (lambda v, h: (v, h) if v and h else None)(*leftovers(tmp)))
        assert all(v.parent == tmp for v in views), views
        assert sorted(os.listdir(victim)) == ["keep"] and run.is_symlink()
    finally:
        d.proc.kill()
        d.proc.wait()
        d.log.close()


def test_a_call_that_ends_cleanly_leaves_nothing_but_the_users_directory(plugbox, tmpdir_env, two_plugins):
    """The supervisor's own directory goes when it exits; plugbox-run-UID,
    like plugbox-root-UID, is made once and kept."""
    tmp, env = tmpdir_env
    plugins, pol = two_plugins
    cp = plugbox.call(plugins, "viewer", "echo", '"hi"', options=("--policies", pol), env={"TMPDIR": str(tmp)})
    assert cp.returncode == EXIT_OK and result_of(cp) == ["viewer", "hi"], explain(cp)
    run = f"plugbox-run-{os.geteuid()}"
    assert sorted(os.listdir(tmp)) == [run] and os.listdir(tmp / run) == [], \
        [str(p) for p in tmp.rglob("*")]
