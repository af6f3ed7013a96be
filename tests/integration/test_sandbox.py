"""Sandbox invariants, observed from inside the worker: the seccomp filter and
no_new_privs are in force before the plugin's first line runs, only the
channel descriptors are open, stdin is /dev/null, the environment is empty,
threads work. Attacks are in test_hostile.py."""

import os

import pytest

from pbtest import explain


@pytest.fixture(scope="module")
def at_import(plugbox, paths):
    """What procstatus's top-level code saw (the first plugin code to run)."""
    return plugbox.call_ok(paths.features, "procstatus", "at_import")


def test_seccomp_filter_is_loaded_before_plugin_code(at_import):
    assert at_import["status"]["Seccomp"] == "Seccomp:\t2"


def test_no_new_privs_is_set_before_plugin_code(at_import):
    assert at_import["status"]["NoNewPrivs"] == "NoNewPrivs:\t1"


def test_still_confined_during_the_call(plugbox, paths):
    now = plugbox.call_ok(paths.features, "procstatus", "now")
    assert now["status"]["Seccomp"] == "Seccomp:\t2"
    assert now["status"]["NoNewPrivs"] == "NoNewPrivs:\t1"


def test_only_the_channel_and_the_reporter_pipe_are_open_at_import(at_import):
    # 0-5: stdin, captured output, the channel and the report socket
    # (worker/worker.h). 6 and 7: the pipe the SIGSYS reporter renders the
    # Python stack into, made by the worker itself after it closed
    # everything else it inherited. Nothing from the supervisor beyond.
    fds = {fd: kind for fd, kind, *_ in at_import["fds"]}
    assert {0, 1, 2} <= set(fds), at_import["fds"]
    assert max(fds) <= 7, f"unexpected descriptors open in the worker: {at_import['fds']}"
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


@pytest.mark.design
def test_capabilities_are_dropped(at_import):
    assert at_import["status"]["CapEff"] == "CapEff:\t0000000000000000"
    assert at_import["status"]["CapPrm"] == "CapPrm:\t0000000000000000"


@pytest.mark.design
@pytest.mark.skipif(os.geteuid() != 0, reason="only meaningful when plugbox runs as root")
def test_root_supervisor_runs_plugins_unprivileged(at_import):
    assert at_import["uid"] != 0 and at_import["euid"] != 0, at_import["status"].get("Uid")
