"""Sandbox invariants, observed from inside the worker: the seccomp filter and
no_new_privs are in force before the plugin's first line runs, only the
channel descriptors are open, stdin is /dev/null, the environment is empty,
threads work. Attacks are in test_hostile.py."""

import os
import shutil
import subprocess
import time

import pytest

from pbtest import explain, worker_pids


@pytest.fixture(scope="module")
def at_import(plugbox, paths):
    """What procstatus's top-level code saw (the first plugin code to run)."""
    return plugbox.call_ok(paths.features, "procstatus", "at_import")


def status_of_worker_while(plugbox, args, ready_line):
    """Run plugbox, wait for `ready_line` on its stderr (printed by plugin
    code that then sleeps), and read the worker's /proc status from outside."""
    proc = subprocess.Popen([plugbox.exe, *map(str, args)], env=plugbox.env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line or ready_line in line:
                break
        assert ready_line in line, f"plugin code did not start: {line!r}"
        (pid,) = worker_pids(proc.pid)
        with open(f"/proc/{pid}/status") as f:
            status = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
        status["fds"] = sorted(int(fd) for fd in os.listdir(f"/proc/{pid}/fd"))
        return status
    finally:
        proc.kill()
        proc.communicate()


@pytest.fixture(scope="module")
def status_at_import(plugbox, paths):
    return status_of_worker_while(plugbox, ["call", "--plugins", paths.features, "slowimport", "ping"],
                                  "importing")


def test_seccomp_filter_is_loaded_before_plugin_code(status_at_import):
    assert status_at_import["Seccomp"] == "2"
    assert int(status_at_import["Seccomp_filters"]) >= 2


def test_no_new_privs_is_set_before_plugin_code(status_at_import):
    assert status_at_import["NoNewPrivs"] == "1"


def test_capabilities_are_dropped(status_at_import):
    for key in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert status_at_import[key] == "0000000000000000", (key, status_at_import[key])


@pytest.mark.parametrize("spawn", ["exec", "fork-server", "zygote"])
def test_capabilities_are_dropped_in_every_spawn_mode(plugbox, paths, spawn):
    """The jail empties every capability set (the bounding set one
    PR_CAPBSET_DROP each) before exec, or in the fork-server's or zygote's
    child before plugin code; the worker then checks the sets from one read
    of /proc/self/status instead of libcap's per-capability loops. Whatever
    the path, the plugin's first line and its calls find all five empty,
    the bounding set included."""
    seen = plugbox.spawning(spawn).call_ok(paths.features, "procstatus", "caps")
    for when in ("at_import", "now"):
        for key in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            assert seen[when][key] == "0000000000000000", (spawn, when, key, seen[when][key])


@pytest.mark.parametrize("spawn", ["exec", "fork-server", "zygote", "shared-zygote"])
def test_a_supervisor_started_under_umask_077_still_starts_its_workers(plugbox, paths, spawn):
    """The mount tree's directories are made with the modes the jail
    writes, whatever the supervisor's umask: under 077 they were 0700, the
    plugin's uid could not reach its worker, and every start failed with
    "Permission denied"."""
    old = os.umask(0o077)
    try:
        seen = plugbox.spawning(spawn).call_ok(paths.features, "procstatus", "caps")
    finally:
        os.umask(old)
    assert seen["now"]["CapEff"] == "0000000000000000", seen


@pytest.mark.skipif(os.geteuid() != 0, reason="only meaningful when plugbox runs as root")
def test_root_supervisor_runs_plugins_unprivileged(status_at_import, at_import):
    uids = status_at_import["Uid"].split()
    assert "0" not in uids, uids
    assert "0" not in status_at_import["Gid"].split(), status_at_import["Gid"]
    assert at_import["uid"] != 0 and at_import["euid"] != 0


def test_each_plugin_has_its_own_identity_as_root(plugbox, paths, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("only meaningful when plugbox runs as root")
    for name in ("first", "second"):
        shutil.copytree(os.path.join(paths.features, "procstatus"), tmp_path / name)
    a = plugbox.call_ok(tmp_path, "first", "now")
    b = plugbox.call_ok(tmp_path, "second", "now")
    assert 0 not in (a["uid"], b["uid"]) and a["uid"] != b["uid"], (a["uid"], b["uid"])
    # and a plugin keeps its identity across restarts
    assert plugbox.call_ok(tmp_path, "first", "now")["uid"] == a["uid"]


def test_worker_is_alone_in_its_pid_namespace_with_its_own_proc(at_import):
    # /proc/self is its own procfs's (test_layers.py: only this process).
    assert at_import["pid"] == 1
    assert at_import["proc_visible"] is True


def test_still_confined_during_the_call(plugbox, paths):
    status = status_of_worker_while(
        plugbox, ["call", "--plugins", paths.features, "slowimport", "ping"], "importing")
    assert status["Seccomp"] == "2" and status["NoNewPrivs"] == "1"


def test_only_the_channel_and_the_reporter_pipe_are_open(status_at_import, at_import):
    # 0-5: stdin, captured output, the channel and the report socket
    # (worker/worker.h). 6 and 7: the pipe the SIGSYS reporter renders the
    # Python stack into, made by the worker itself after it closed
    # everything else it inherited. Nothing from the supervisor beyond.
    assert status_at_import["fds"] == [0, 1, 2, 3, 4, 5, 6, 7], status_at_import["fds"]
    fds = {fd: kind for fd, kind, *_ in at_import["fds"]}
    assert fds.get(6) == fds.get(7) == "fifo", at_import["fds"]


def test_stdin_is_dev_null(at_import):
    fd0 = at_import["fds"][0]
    assert fd0 == [0, "chr", [1, 3]], f"fd 0 is not /dev/null: {fd0}"


def test_supervisors_stdin_does_not_reach_the_plugin(plugbox, paths):
    cp = plugbox.call(paths.features, "procstatus", "read_stdin", input="secret input for plugbox\n")
    assert cp.returncode == 0, explain(cp)
    assert cp.stdout.strip() == '""', explain(cp)


def test_environment_is_scrubbed(plugbox, paths):
    env = {"FOO": "bar", "LANG": "xx_XX.UTF-8", "LD_LIBRARY_PATH": "/nonexistent",
           "SSL_CERT_FILE": "/nonexistent/cert.pem", "PYTHONPATH": "/usr/lib/python3/dist-packages"}
    info = plugbox.call_ok(paths.features, "syspath", "info", env=env)
    environ = info["environ"]
    leaked = sorted(set(environ) - {"LANG"})  # names only: values may be secrets
    assert not leaked, f"the worker inherited: {leaked}"
    # If LANG is there, it is plugbox's fixed value, not the caller's.
    assert environ.get("LANG") != "xx_XX.UTF-8"


def test_threads_work(plugbox, paths):
    result = plugbox.call_ok(paths.features, "threads", "run", "4", "100000")
    expected = sum(range(100000))
    assert result["threads"] == [[True, expected]] * 4
    assert result["pool"] == [expected] * 4
