"""Workers forked from their plugin's zygote (`--spawn zygote`).

A plugin's zygote is a worker that entered every layer, imported the plugin
once, and forks each further worker of that plugin. test_hostile.py runs
every attack against such workers too; this file checks what is particular
to them: they start with the plugin imported, a child cannot fork, a child
has the zygote's walls (namespaces, uid, limits, no_new_privs, seccomp with
its own program stacked) but not its threads, descriptors or randomness,
each plugin has a zygote of its own (exec'd under --spawn zygote, with its
own hash secret and address layout; cloned from the daemon's fork-server
into its own plugin's jail under --spawn shared-zygote), and a killed zygote
is replaced.
"""

import errno
import os
import shutil
import signal
import time

import pytest

from pbserve import serve, sockdir  # noqa: F401 (fixtures used by name)
from pbtest import mapped_at

ZYGOTE = ["--spawn", "zygote"]
SHARED_ZYGOTE = ["--spawn", "shared-zygote"]


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return [b""]


def status(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def descendants(root):
    """Every process below root, as {pid: parent}."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents[int(entry)] = int(status(int(entry))["PPid"])
            except (OSError, KeyError, ValueError):
                pass
    below, todo = {}, [root]
    while todo:
        p = todo.pop()
        for pid, parent in parents.items():
            if parent == p and pid not in below:
                below[pid] = parent
                todo.append(pid)
    return below


def is_worker(pid):
    """A plugin's worker or zygote, not an install helper (the compiler of a
    bytecode cache) nor the fork-server the zygotes are cloned from."""
    argv = cmdline(pid)
    return argv[0].endswith(b"plugbox-worker") and b"--install" not in argv and b"--fork-server" not in argv


def fork_servers(root):
    """The daemon's fork-server: its child `plugbox-worker --fork-server`."""
    return [pid for pid, parent in descendants(root).items()
            if parent == root and cmdline(pid)[1:2] == [b"--fork-server"]]


def zygotes(root):
    """The daemon's zygotes: its children started with --zygote."""
    return [pid for pid, parent in descendants(root).items()
            if parent == root and is_worker(pid) and b"--zygote" in cmdline(pid)]


def workers(root):
    """Workers answering calls: exec'd ones (the daemon's children) and
    forked ones (a zygote's children)."""
    below = descendants(root)
    zs = zygotes(root)
    return [pid for pid, parent in below.items()
            if is_worker(pid) and ((parent == root and pid not in zs) or parent in zs)]


def wait_for(predicate, what, timeout=10):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"still waiting for {what}")
        time.sleep(0.02)


def call(conn, ident, plugin, function, *args):
    conn.call(ident, plugin, function, *args)
    reply = conn.recv()
    assert reply["body"] == "result", reply
    return reply["value"]


@pytest.fixture
def plugins(copy_plugins, paths):
    return copy_plugins(paths.plugins / "zygote")


def one_worker_of_slow(serve, plugins):
    """A zygote-mode daemon after one call: (daemon, connection, zygote)."""
    d = serve(plugins, *ZYGOTE)
    conn = d.conn()
    assert call(conn, 1, "slow", "ping") == "pong"
    [zygote] = zygotes(d.pid)
    return d, conn, zygote


def second_worker_first_answer(serve, plugins, sock, *options):
    """Seconds from asking a new worker of `slow` (its first one ended by
    --idle-stop) for an answer to getting it."""
    d = serve(plugins, "--idle-stop", "0.3", *options, sock=sock)
    conn = d.conn()
    assert call(conn, 1, "slow", "ping") == "pong"
    wait_for(lambda: workers(d.pid) == [], "the idle worker to stop")
    start = time.monotonic()
    assert call(conn, 2, "slow", "ping") == "pong"
    took = time.monotonic() - start
    d.stop()
    return took


def test_a_forked_worker_starts_with_its_plugin_imported(serve, plugins, sockdir):
    # `slow` takes 300 ms to import. An exec'd worker pays it at every start;
    # a worker forked from the zygote, which imported it once, does not.
    exec_took = second_worker_first_answer(serve, plugins, sockdir / "exec.sock")
    zygote_took = second_worker_first_answer(serve, plugins, sockdir / "zygote.sock", *ZYGOTE)
    assert exec_took >= 0.3, exec_took
    assert zygote_took * 3 < exec_took, (zygote_took, exec_took)


def test_a_forked_worker_cannot_fork(serve, plugins):
    d = serve(plugins, *ZYGOTE)
    conn = d.conn()
    # The zygote's own program allows fork (it forks this worker); the
    # worker's stacked program refuses it, whichever way it is asked.
    assert call(conn, 1, "slow", "try_fork") == {"os.fork": errno.EPERM, "ctypes fork": errno.EPERM}
    assert call(conn, 2, "slow", "threads_work") is True
    [zygote] = zygotes(d.pid)
    assert descendants(zygote) == {pid: zygote for pid in workers(d.pid)}, "a fork got through"
    d.stop()


def test_a_forked_worker_has_its_zygotes_walls(serve, plugins):
    d, _, zygote = one_worker_of_slow(serve, plugins)
    [child] = workers(d.pid)
    z, c = status(zygote), status(child)
    assert c["Uid"] == z["Uid"] and c["Gid"] == z["Gid"] and c["Uid"].split()[0] != "0", (z["Uid"], c["Uid"])
    assert c["NoNewPrivs"] == z["NoNewPrivs"] == "1"
    assert c["Seccomp"] == z["Seccomp"] == "2"
    # Its own program stacked on the zygote's: filters only tighten.
    assert int(c["Seccomp_filters"]) > int(z["Seccomp_filters"]) > 0, (z["Seccomp_filters"], c["Seccomp_filters"])
    assert c["CapEff"] == c["CapPrm"] == c["CapBnd"] == "0000000000000000"
    with open(f"/proc/{zygote}/limits") as zf, open(f"/proc/{child}/limits") as cf:
        assert zf.read() == cf.read()
    for ns in ("pid_for_children", "mnt", "net", "ipc", "uts", "cgroup"):
        assert os.readlink(f"/proc/{child}/ns/{ns}") == os.readlink(f"/proc/{zygote}/ns/{ns}"), ns
    assert os.readlink(f"/proc/{child}/ns/pid") != os.readlink(f"/proc/{d.pid}/ns/pid")
    d.stop()


def test_forked_workers_are_unique_and_inherit_nothing_but_the_import(serve, plugins):
    d = serve(plugins, "--idle-stop", "0.3", *ZYGOTE)
    conn = d.conn()
    first = call(conn, 1, "slow", "probe")
    wait_for(lambda: workers(d.pid) == [], "the idle worker to stop")
    second = call(conn, 2, "slow", "probe")
    # Both were forked from one zygote, after the one import...
    assert first["imported_at"] == second["imported_at"]
    assert first["pid"] != second["pid"]
    # ...and each re-seeded what must be its own.
    assert first["random"] != second["random"], (first, second)
    assert first["urandom"] != second["urandom"]
    # The zygote's import-time thread stayed in the zygote.
    for probe in (first, second):
        assert probe["threads"] == ["MainThread"] and probe["tasks"] == 1, probe
    [zygote] = zygotes(d.pid)
    assert len(os.listdir(f"/proc/{zygote}/task")) >= 2  # its import-time thread is there
    # No descriptor of the zygote: 0-6, the SIGSYS traceback pipe (two),
    # and the one listdir("/proc/self/fd") opened.
    for probe in (first, second):
        assert probe["fds"][:7] == list(range(7)) and len(probe["fds"]) <= 10, probe["fds"]
    d.stop()


def test_plugins_in_zygote_mode_see_only_their_own_deps(serve, copy_plugins, paths):
    d = serve(copy_plugins(paths.seed), *ZYGOTE)
    conn = d.conn()
    answers = {}
    for i, plugin in enumerate(["plug1", "plug2", "plug1"]):
        answers.setdefault(plugin, set()).add(call(conn, i + 1, plugin, "requests_version"))
    # The seed scenario: each plugin gets the requests it vendors...
    assert answers == {"plug1": {"2.2.0"}, "plug2": {"2.3.0"}}
    # ...from a zygote of its own, with its own uid.
    zs = zygotes(d.pid)
    assert len(zs) == 2 and status(zs[0])["Uid"] != status(zs[1])["Uid"], zs
    assert sorted(len(children_of) for children_of in
                  ([p for p, parent in descendants(d.pid).items() if parent == z] for z in zs)) == [1, 1]
    assert "starting workers with exec" not in d.stderr()
    d.stop()


def test_a_killed_zygote_is_replaced(serve, plugins):
    d, conn, zygote = one_worker_of_slow(serve, plugins)
    os.kill(zygote, signal.SIGKILL)
    # Its pid namespace ends with it, and so does its worker: that call's
    # worker is gone; the next call gets a worker from a new zygote.
    def gone(pid):
        try:
            return status(pid)["State"].startswith("Z")
        except OSError:
            return True
    # (Its zombie stays until the supervisor next looks for a zygote.)
    wait_for(lambda: gone(zygote) and not [w for w in workers(d.pid) if not gone(w)],
             "the zygote and its worker to go")
    for i in range(2, 5):
        try:
            if call(conn, i, "slow", "ping") == "pong":
                break
        except AssertionError:
            continue  # the call that found its worker dead
    else:
        pytest.fail(d.stderr())
    [new] = [z for z in zygotes(d.pid) if not gone(z)]
    assert new != zygote and zygote not in descendants(d.pid)
    assert "starting workers with exec" not in d.stderr()
    d.stop()


FRESH_POLICY = """\
openat: 1
@file-write: 1
@scratch 1M
@include default
"""


@pytest.mark.parametrize("spawn", ["zygote", "exec"])
def test_fresh_per_call_leaves_nothing_to_the_next_call(serve, plugins, policies_with, sockdir, spawn):
    # Without @fresh-per-call, one worker answers both calls: the secret
    # is there for the next call to find, in memory and on disk.
    d = serve(plugins, "--policies", policies_with(fresh=FRESH_POLICY), "--spawn", spawn,
              sock=sockdir / "kept.sock")
    conn = d.conn()
    call(conn, 1, "fresh", "remember", "s3cret")
    assert call(conn, 2, "fresh", "recall") == {"global": "s3cret", "file": "s3cret"}
    d.stop()
    # With it, each call has a worker of its own (a new child of the
    # plugin's zygote in zygote mode), and its scratch directory starts empty.
    d = serve(plugins, "--policies", policies_with(fresh="@fresh-per-call\n" + FRESH_POLICY), "--spawn", spawn,
              sock=sockdir / "fresh.sock")
    conn = d.conn()
    for i in range(3):
        call(conn, 10 * i + 1, "fresh", "remember", f"s3cret{i}")
        assert call(conn, 10 * i + 2, "fresh", "recall") == {"global": None, "file": None}
    if spawn == "zygote":
        assert len(zygotes(d.pid)) == 1
    assert "starting workers with exec" not in d.stderr()
    d.stop()


def test_a_zygote_that_cannot_fork_leaves_calls_to_exec(serve, plugins, policies_with):
    # crowded's import fills its @limit processes with threads: its zygote
    # cannot fork, and its workers are exec'd instead, said once.
    d = serve(plugins, "--idle-stop", "0.3", "--policies",
              policies_with(crowded="@limit processes 6\n@include default\n"), *ZYGOTE)
    conn = d.conn()
    answers = []
    for i in range(2):
        answers.append(call(conn, i + 1, "crowded", "ping"))
        wait_for(lambda: workers(d.pid) == [], "the idle worker to stop")
    [zygote] = zygotes(d.pid)
    assert len(os.listdir(f"/proc/{zygote}/task")) == 6  # the attempt's cause is real
    lines = [line for line in d.stderr().splitlines() if "cannot fork" in line]
    assert len(lines) == 1 and "crowded" in lines[0] and "starting workers with exec" in lines[0], d.stderr()
    # Exec'd workers, the daemon's own children, answered.
    assert all(a["pid"] == 1 for a in answers), answers
    assert call(conn, 9, "crowded", "ping")["pid"] == 1
    d.stop()


def test_a_zygote_that_prints_at_import_still_starts(plugbox, paths):
    # Its import prints 380 KB: a zygote nobody read would wait on a full pipe.
    z = plugbox.spawning("zygote")
    cp = z.call(paths.plugins / "zygote", "noisy", "ping", options=["--timeout", "20"])
    assert cp.returncode == 0 and cp.stdout.strip() == '"pong"', cp.stderr[-2000:]



def test_a_zygote_whose_import_hangs_is_given_up_and_its_workers_exec_d(serve, plugins):
    # stalled's import sleeps 15 s in its zygote (nowhere else). A
    # zygote's import is waited for at most PB_ZYGOTE_START_MS (10 s), not
    # the daemon's timeout: then the plugin's workers are exec'd, said
    # once, and no zygote is tried again.
    d = serve(plugins, "--timeout", "60", *ZYGOTE)
    conn = d.conn()
    start = time.monotonic()
    assert call(conn, 1, "stalled", "ping")["pid"] == 1     # exec'd: pid 1 of its own namespace
    took = time.monotonic() - start
    assert 9.0 <= took < 14.0, took                          # the cap, not the 15 s import
    assert zygotes(d.pid) == []
    lines = [line for line in d.stderr().splitlines() if "starting workers with exec from now on" in line]
    assert len(lines) == 1 and "stalled" in lines[0] and "no answer within 10000 ms" in lines[0], d.stderr()
    d.stop()


def test_a_zygote_whose_import_hangs_does_not_hold_up_other_plugins(serve, plugins):
    # While stalled's zygote sleeps in its import (10 s, until it is given
    # up), the daemon keeps serving slow within its normal latency: the
    # import is looked at from the plugin's timer, never waited for.
    import statistics
    import threading

    d = serve(plugins, "--timeout", "60", *ZYGOTE)
    sibling = d.conn()
    assert call(sibling, 1, "slow", "ping") == "pong"

    def latencies(n, first_id):
        out = []
        for i in range(n):
            start = time.monotonic()
            assert call(sibling, first_id + i, "slow", "ping") == "pong"
            out.append(time.monotonic() - start)
        return out

    def p99(xs):
        return statistics.quantiles(xs, n=100)[98]

    baseline = latencies(100, 10)
    stalled = {}

    def call_stalled():
        start = time.monotonic()
        stalled["value"] = call(d.conn(), 1, "stalled", "ping")
        stalled["took"] = time.monotonic() - start

    t = threading.Thread(target=call_stalled)
    t.start()
    wait_for(lambda: len(zygotes(d.pid)) == 2, "stalled's zygote to start importing")
    during = latencies(100, 1000)
    assert t.is_alive(), "the stalled import ended before the sibling's calls"  # they ran during it
    t.join(30)
    assert stalled["value"]["pid"] == 1 and 9.0 <= stalled["took"] < 14.0, stalled
    assert max(during) < 1.0, (max(during), p99(baseline))
    assert p99(during) <= 3 * p99(baseline) + 0.02, (p99(during), p99(baseline))
    d.stop()


def two_layout_plugins(copy_plugins, paths):
    """layout_a and its copy layout_b: each says its worker's hash of one
    str, where None is (libpython's place) and its pid."""
    plugins = copy_plugins(paths.plugins / "forkserver")
    shutil.copytree(plugins / "layout_a", plugins / "layout_b")
    return plugins


def test_under_zygote_each_plugin_has_its_own_hash_secret_and_address_layout(serve, copy_plugins, paths):
    # --spawn zygote: each plugin's zygote is exec'd, so it draws its own
    # hash secret and address layout (ASLR); its workers share them with
    # each other, never with another plugin's. (The worker's interpreter
    # reads no PYTHONHASHSEED: use_environment = 0, worker/interp.c.)
    d = serve(two_layout_plugins(copy_plugins, paths), "--idle-stop", "0.3", *ZYGOTE)
    conn = d.conn()
    a = call(conn, 1, "layout_a", "fingerprint")
    b = call(conn, 2, "layout_b", "fingerprint")
    assert a["hash"] != b["hash"], (a, b)
    assert a["none_at"] != b["none_at"], (a, b)
    assert fork_servers(d.pid) == []
    zs = zygotes(d.pid)
    assert len(zs) == 2, zs
    assert mapped_at(zs[0], "libpython3.11") != mapped_at(zs[1], "libpython3.11")
    # A second worker of layout_a (the first ended by --idle-stop), forked
    # from the same zygote: the same secret and layout as its sibling.
    [first] = [w for w in workers(d.pid) if b"layout_a" in cmdline(w)]
    its_zygote = int(status(first)["PPid"])
    wait_for(lambda: workers(d.pid) == [], "the idle workers to stop")
    a2 = call(conn, 3, "layout_a", "fingerprint")
    [second] = workers(d.pid)
    assert second != first and int(status(second)["PPid"]) == its_zygote in zs
    assert a2["hash"] == a["hash"] and a2["none_at"] == a["none_at"], (a, a2)
    assert "with exec" not in d.stderr()
    d.stop()


def test_shared_zygotes_are_cloned_from_the_fork_server_each_into_its_own_jail(serve, copy_plugins, paths):
    # --spawn shared-zygote: two plugins' zygotes, both clones of the
    # daemon's one fork-server (they share its interpreter's pages, so
    # 1,000 plugins cost less), and each in its own plugin's jail before it
    # imported its plugin.
    d = serve(two_layout_plugins(copy_plugins, paths), "--idle-stop", "0.3", *SHARED_ZYGOTE)
    conn = d.conn()
    a = call(conn, 1, "layout_a", "fingerprint")
    b = call(conn, 2, "layout_b", "fingerprint")
    [server] = fork_servers(d.pid)
    zs = zygotes(d.pid)
    assert len(zs) == 2, zs
    # Not exec'd: an exec would have placed libpython elsewhere (ASLR).
    for z in zs:
        assert mapped_at(z, "libpython3.11") == mapped_at(server, "libpython3.11"), z
    # So the plugins' workers share the fork-server's hash secret and address
    # layout, across plugins: the price docs/security.md states.
    assert a["hash"] == b["hash"] and a["none_at"] == b["none_at"], (a, b)
    assert a["pid"] > 1 and b["pid"] > 1  # not pid 1: each forked by its zygote
    # Each zygote in its own plugin's jail; the fork-server in none.
    z0, z1, fs = status(zs[0]), status(zs[1]), status(server)
    assert fs["Uid"].split()[0] == "0" and fs["Seccomp"] == "0"
    for z in (z0, z1):
        assert z["Uid"].split()[0] != "0" and z["NoNewPrivs"] == "1" and z["Seccomp"] == "2", z
        assert z["CapEff"] == "0000000000000000"
    assert z0["Uid"] != z1["Uid"]
    for ns in ("pid", "mnt", "net", "ipc", "uts"):
        seen = {os.readlink(f"/proc/{pid}/ns/{ns}") for pid in (zs[0], zs[1], server)}
        assert len(seen) == 3, (ns, seen)
    # The zygotes are the daemon's children: the fork-server's death leaves
    # them forking (each plugin's next worker comes from its zygote).
    os.kill(server, signal.SIGKILL)
    wait_for(lambda: workers(d.pid) == [], "the idle workers to stop")
    assert call(conn, 3, "layout_a", "fingerprint")["hash"] == a["hash"]
    assert call(conn, 4, "layout_b", "fingerprint")["pid"] > 1
    assert sorted(zygotes(d.pid)) == sorted(zs)
    assert sorted(int(status(w)["PPid"]) for w in workers(d.pid)) == sorted(zs)
    assert "with exec" not in d.stderr()
    d.stop()


class PidsCgroup:
    """A pids cgroup whose pids.max is 1: a process moved into it can
    create no process or thread (clone fails with EAGAIN), and nothing
    else on the machine is affected. cgroup v1's pids hierarchy, or v2's
    when its root delegates the pids controller; None where neither is
    writable here."""

    def __init__(self, name):
        self.path = self.root = None
        for root, v2 in (("/sys/fs/cgroup/pids", False), ("/sys/fs/cgroup", True)):
            try:
                if v2 and "pids" not in open(f"{root}/cgroup.subtree_control").read().split():
                    continue
                path = f"{root}/{name}-{os.getpid()}"
                os.mkdir(path)
            except OSError:
                continue
            try:
                with open(f"{path}/pids.max", "w") as f:
                    f.write("1")
            except OSError:
                os.rmdir(path)
                continue
            self.path, self.root = path, root
            return

    def hold(self, pid):
        with open(f"{self.path}/cgroup.procs", "w") as f:
            f.write(str(pid))

    def events(self):
        with open(f"{self.path}/pids.events") as f:
            return int(f.read().split()[1])        # "max N": clones refused

    def remove(self):
        if not self.path:
            return
        try:
            with open(f"{self.path}/cgroup.procs") as f:
                left = f.read().split()
        except OSError:
            left = []
        for pid in left:                           # back where they came from
            try:
                with open(f"{self.root}/cgroup.procs", "w") as f:
                    f.write(pid)
            except OSError:
                pass
        try:
            os.rmdir(self.path)
        except OSError:
            pass


@pytest.fixture
def pids_cgroup():
    cg = PidsCgroup("plugbox-test")
    if not cg.path:
        pytest.skip("no writable pids cgroup (cgroup v1 pids or v2 with pids delegated) on this machine")
    yield cg
    cg.remove()


def test_a_zygote_the_fork_server_cannot_clone_is_execd_and_answers(serve, copy_plugins, paths, pids_cgroup):
    # --spawn shared-zygote: layout_a's zygote is cloned from the fork-server.
    # Then the fork-server may create no process (a pids cgroup of one), so
    # its clone of layout_b's zygote fails: that zygote is exec'd instead,
    # said once, and layout_b's calls are answered by workers forked from it.
    d = serve(two_layout_plugins(copy_plugins, paths), "--idle-stop", "0.3", *SHARED_ZYGOTE)
    conn = d.conn()
    a = call(conn, 1, "layout_a", "fingerprint")
    [server] = fork_servers(d.pid)
    pids_cgroup.hold(server)
    b = call(conn, 2, "layout_b", "fingerprint")
    b2 = call(conn, 3, "layout_b", "fingerprint")
    assert pids_cgroup.events() >= 1, "the fork-server never tried to clone"  # the attempt was made, and refused
    assert b2["pid"] == b["pid"] > 1, (b, b2)        # forked by its zygote (pid 1 would be an exec'd worker)
    assert len(zygotes(d.pid)) == 2, zygotes(d.pid)
    [za] = [z for z in zygotes(d.pid) if b"layout_a" in cmdline(z)]
    [zb] = [z for z in zygotes(d.pid) if b"layout_b" in cmdline(z)]
    # layout_a's zygote shares the fork-server's libpython; layout_b's was
    # exec'd, so ASLR put it elsewhere, and its worker with it.
    assert mapped_at(za, "libpython3.11") == mapped_at(server, "libpython3.11")
    assert mapped_at(zb, "libpython3.11") != mapped_at(server, "libpython3.11")
    assert b["none_at"] != a["none_at"] and b["hash"] != a["hash"], (a, b)
    [worker_b] = [w for w in workers(d.pid) if int(status(w)["PPid"]) == zb]
    assert mapped_at(worker_b, "libpython3.11") == mapped_at(zb, "libpython3.11")
    lines = [line for line in d.stderr().splitlines() if "instead of cloned" in line]
    assert len(lines) == 1, d.stderr()
    assert "layout_b" in lines[0] and "Resource temporarily unavailable" in lines[0], lines
    # The next worker of layout_b comes from the same exec'd zygote, and
    # nothing more is said.
    wait_for(lambda: workers(d.pid) == [], "the idle workers to stop")
    assert call(conn, 4, "layout_b", "fingerprint")["none_at"] == b["none_at"]
    assert [z for z in zygotes(d.pid) if b"layout_b" in cmdline(z)] == [zb]
    assert len([line for line in d.stderr().splitlines() if "instead of cloned" in line]) == 1
    d.stop()
