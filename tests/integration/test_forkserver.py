"""Workers cloned from the fork-server (`--spawn fork-server`).

The fork-server is one `plugbox-worker --fork-server` per supervisor, holding
an interpreter started with the standard library only; each worker is cloned
from it and enters its plugin's jail and sandbox before it reads a byte of
the plugin. test_hostile.py runs every attack against such workers too; this
file checks what is particular to them: plugins cloned from the same
fork-server still see only their own dependencies, the trade-off the README
states (a shared hash secret and address layout) is real and limited to this
mode, and the fork-server's death costs nothing but its speed.
"""

import json
import os
import shutil
import signal
import time

import pytest

import pbwire
from pbserve import serve, sockdir  # noqa: F401 (fixtures used by name)
from pbtest import EXIT_OK, assert_one_error_line, explain, mapped_at, result_of, worker_pids

FORK_SERVER = ["--spawn", "fork-server"]


def in_own_pid_namespace(pid):
    """True for a worker (pid 1 of its own namespace), False for the fork-server."""
    with open(f"/proc/{pid}/status") as f:
        nspid = next(line for line in f if line.startswith("NSpid:")).split()[1:]
    return len(nspid) > 1


def cmdline(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().split(b"\0")


def fork_servers(parent):
    return [p for p in worker_pids(parent) if not in_own_pid_namespace(p)]


def test_plugins_cloned_from_one_fork_server_see_only_their_own_deps(serve, copy_plugins, paths):
    plugins = copy_plugins(paths.seed)
    d = serve(plugins, *FORK_SERVER)
    conn = d.conn()
    answers = {}
    for i, plugin in enumerate(["plug1", "plug2", "plug1"]):
        conn.call(i + 1, plugin, "requests_version")
        reply = conn.recv()
        assert reply["body"] == "result", reply
        answers.setdefault(plugin, set()).add(reply["value"])
    # The seed scenario: each plugin gets the requests it vendors.
    assert answers == {"plug1": {"2.2.0"}, "plug2": {"2.3.0"}}
    # Both workers came from the one fork-server: the daemon's children are
    # the fork-server and two workers, each in a pid namespace of its own,
    # cloned, not exec'd (libpython where the fork-server has it), each
    # showing its plugin's name as an exec'd worker does.
    servers = fork_servers(d.pid)
    workers = [p for p in worker_pids(d.pid) if in_own_pid_namespace(p)]
    assert len(servers) == 1 and len(workers) == 2, (servers, workers)
    assert cmdline(servers[0])[1] == b"--fork-server"
    assert sorted(cmdline(pid)[1:3] for pid in workers) == [[b"--name", b"plug1"], [b"--name", b"plug2"]]
    for pid in workers:
        assert mapped_at(pid, "libpython3.11") == mapped_at(servers[0], "libpython3.11"), pid
    d.stop()


def test_a_cloned_worker_says_how_it_started(plugbox, paths):
    listed = json.loads(plugbox.spawning("fork-server").list(paths.seed, as_json=True).stdout)
    for plugin in listed:
        assert any(l.startswith("start: cloned from the fork-server") for l in plugin["layers"]), plugin
    listed = json.loads(plugbox.list(paths.seed, as_json=True).stdout)
    for plugin in listed:
        assert "start: exec (its own address layout and hash secret)" in plugin["layers"], plugin


def fingerprints(serve, plugins, *options, sock=None):
    d = serve(plugins, *options, sock=sock)
    conn = d.conn()
    prints = []
    for i, plugin in enumerate(["layout_a", "layout_b"]):
        conn.call(i + 1, plugin, "fingerprint")
        reply = conn.recv()
        assert reply["body"] == "result", reply
        prints.append(reply["value"])
    d.stop()
    return prints


def test_shared_hash_secret_and_layout_only_with_the_fork_server(serve, copy_plugins, paths, sockdir):
    plugins = copy_plugins(paths.plugins / "forkserver")
    shutil.copytree(plugins / "layout_a", plugins / "layout_b")
    a, b = fingerprints(serve, plugins)
    # Exec'd workers: each its own hash secret and its own address layout.
    assert a["pid"] == b["pid"] == 1
    assert a["hash"] != b["hash"] and a["none_at"] != b["none_at"], (a, b)
    a, b = fingerprints(serve, plugins, *FORK_SERVER, sock=sockdir / "fs.sock")
    # Cloned workers share both: the documented price of the fork-server.
    assert a["hash"] == b["hash"] and a["none_at"] == b["none_at"] and a["heap_at"] == b["heap_at"], (a, b)


def test_fork_server_death_costs_only_speed(serve, copy_plugins, paths):
    plugins = copy_plugins(paths.seed)
    d = serve(plugins, *FORK_SERVER)
    conn = d.conn()
    conn.call(1, "plug1", "requests_version")
    assert conn.recv()["value"] == "2.2.0"
    [server] = fork_servers(d.pid)
    os.kill(server, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while server in fork_servers(d.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    # The running worker is the daemon's child, not the fork-server's: it
    # lives on; the next new worker comes from a fork-server started anew.
    conn.call(2, "plug1", "requests_version")
    assert conn.recv()["value"] == "2.2.0"
    conn.call(3, "plug2", "requests_version")
    assert conn.recv()["value"] == "2.3.0"
    servers = fork_servers(d.pid)
    assert len(servers) == 1 and servers != [server], servers
    assert "starting workers with exec" not in d.stderr()
    d.stop()


def test_spawn_option_errors(plugbox, paths):
    cp = plugbox.run(["call", "--plugins", paths.seed, "--spawn", "vfork", "plug1", "requests_version"])
    assert_one_error_line(cp, "--spawn", "vfork")
    cp = plugbox.run(["call", "--socket", "/nonexistent.sock", "--spawn", "fork-server", "plug1", "x"])
    assert_one_error_line(cp, "--socket", "serve --spawn")
    cp = plugbox.call(paths.seed, "plug2", "requests_version", options=FORK_SERVER)
    assert cp.returncode == EXIT_OK and result_of(cp) == "2.3.0", explain(cp)
