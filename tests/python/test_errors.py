"""Every way a call fails, as the exception a Python programmer expects."""

import os
import pickle
import platform
import re
import time

import pytest

import plugbox
from plugbox import _errors

x86_64_only = pytest.mark.skipif(platform.machine() != "x86_64",
                                 reason="the hostile plugins use x86_64 syscall numbers")


def line_of(path, text):
    numbers = [i for i, line in enumerate(path.read_text().splitlines(), 1) if line.strip().startswith(text)]
    assert len(numbers) == 1, f"{text!r} should start exactly one line of {path}"
    return numbers[0]


def test_the_plugins_exception_is_a_plugin_error_with_its_traceback(supervisor, paths):
    sup = supervisor(paths.features)
    with pytest.raises(plugbox.PluginError) as info:
        sup.call("raiser", "fail", "boom")
    e = info.value
    assert (e.kind, e.plugin, e.remote_type, e.message) == ("exception", "raiser", "ValueError", "boom")
    assert str(e) == "ValueError: boom"
    assert isinstance(e, plugbox.Error)
    assert "raise ValueError(message)" in e.remote_traceback
    assert e.remote_traceback.rstrip().endswith("ValueError: boom")
    # shown under the host's own traceback when nobody catches it
    assert any("raise ValueError(message)" in note for note in e.__notes__)

    with pytest.raises(plugbox.PluginError) as info:
        sup.call("raiser", "custom")
    e = info.value
    assert e.remote_type == "raiser.errors.PluginError"     # the plugin's own class, by its full name
    assert e.message == "first line\nsecond line"
    assert re.search(r"deep_failure\(\).*_level2\(\)", e.remote_traceback, re.S)
    with pytest.raises(plugbox.PluginError, match="KeyError: 'missing'"):
        sup.call("raiser", "key_error")


@x86_64_only
def test_a_syscall_the_policy_kills_is_a_sandbox_violation_naming_syscall_and_rule(supervisor, paths, policies):
    pol = policies(test_set="action-kill")
    line = line_of(pol / "actions.policy", "getppid: kill")
    sup = supervisor(paths.policy, pol)
    with pytest.raises(plugbox.SandboxViolation) as info:
        sup.call("actions", "getppid")
    e = info.value
    assert (e.kind, e.plugin, e.syscall) == ("violation", "actions", "getppid")
    assert e.rule.startswith(f"'getppid: kill' at actions.policy:{line}"), e.rule
    assert "stopped by the sandbox" in str(e) and e.rule in str(e)
    assert "_raw" in e.remote_traceback        # the plugin's stack at the call
    # the plugin runs again after it
    with pytest.raises(plugbox.SandboxViolation):
        sup.call("actions", "getppid")


@x86_64_only
def test_an_attack_is_stopped_and_the_others_go_on(supervisor, paths):
    sup = supervisor(paths.hostile)
    with pytest.raises(plugbox.SandboxViolation) as info:
        sup.call("sys_ptrace", "attack")
    assert info.value.syscall == "ptrace"
    assert "python.policy" in info.value.rule
    assert sup.call("good", "ping") == "pong"


def test_a_deadline_is_a_call_timeout_which_is_a_timeout_error(supervisor, paths):
    sup = supervisor(paths.features)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError) as info:
        sup.call("slow", "spin_ignoring_sigterm", _timeout=0.5)
    assert time.monotonic() - t0 < 5
    e = info.value
    assert isinstance(e, plugbox.CallTimeout) and e.kind == "timeout" and e.plugin == "slow"
    assert "timed out after 0.5 s" in str(e)
    assert sup.call("slow", "sleep", 0) == 0


def test_a_worker_that_dies_is_worker_crashed(supervisor, paths):
    sup = supervisor(paths.features)
    with pytest.raises(plugbox.WorkerCrashed, match="signal 11") as info:
        sup.call("crasher", "segfault")
    assert info.value.kind == "crashed"
    with pytest.raises(plugbox.WorkerCrashed, match="exit"):
        sup.call("crasher", "exit_now", 3)


def test_a_worker_breaking_the_protocol_is_a_protocol_error(supervisor, paths):
    sup = supervisor(paths.channel)
    with pytest.raises(plugbox.ProtocolError, match="undecodable envelope") as info:
        sup.call("rogue", "garbage")
    assert info.value.kind == "protocol"


def test_unknown_plugins_and_functions_are_not_found(supervisor, paths):
    sup = supervisor(paths.features)
    for plugin, function in (("no_such_plugin", "f"), ("echo", "no_such_function"), ("../echo", "echo")):
        with pytest.raises(LookupError) as info:
            sup.call(plugin, function)
        assert isinstance(info.value, plugbox.NotFound) and info.value.kind == "not_found"


def test_a_broken_plugin_or_policy_is_a_config_error(supervisor, paths, policies):
    sup = supervisor(paths.badconfig)
    with pytest.raises(plugbox.ConfigError, match="wrongname") as info:
        sup.call("wrongname", "anything")
    assert info.value.kind == "config"
    typo = policies(test_set="typo")
    sup = supervisor(paths.seed, typo)
    with pytest.raises(plugbox.ConfigError, match=r"default\.policy:3:\d+: "):
        sup.call("plug1", "requests_version")


def test_a_plugin_that_cannot_start_leaves_the_hosts_descriptors_alone(supervisor, paths, scratch):
    before = os.fstat(0)
    sup = supervisor(paths.seed, worker=scratch / "no-such-worker")
    with pytest.raises(plugbox.Unavailable, match="could not be started"):
        sup.call("plug1", "requests_version")
    after = os.fstat(0)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)


def test_every_error_kind_has_its_class():
    expected = {
        "exception": plugbox.PluginError, "not_found": plugbox.NotFound, "config": plugbox.ConfigError,
        "violation": plugbox.SandboxViolation, "timeout": plugbox.CallTimeout,
        "crashed": plugbox.WorkerCrashed, "protocol": plugbox.ProtocolError,
        "unavailable": plugbox.Unavailable, "bad_request": plugbox.BadRequest,
    }
    for kind, cls in expected.items():
        e = _errors.from_core(kind, "p", "", "m", "", "", "")
        assert type(e) is cls and e.kind == kind and isinstance(e, plugbox.Error)
        assert cls.__module__ == "plugbox" and getattr(plugbox, cls.__name__) is cls
    e = _errors.from_core("something_new", "p", "", "m", "", "", "")
    assert type(e) is plugbox.Error and e.kind == "something_new"
    assert issubclass(plugbox.NotFound, LookupError)
    assert issubclass(plugbox.BadRequest, ValueError)
    assert issubclass(plugbox.CallTimeout, TimeoutError)


def test_errors_survive_pickling():
    e = _errors.from_core("violation", "evil", "", "stopped", "tb", "ptrace", "'@debug: kill' at x:1")
    back = pickle.loads(pickle.dumps(e))
    assert (type(back), back.plugin, back.syscall, back.rule, str(back)) == \
        (plugbox.SandboxViolation, "evil", "ptrace", "'@debug: kill' at x:1", "stopped")
    e = _errors.from_core("timeout", "slow", "", "timed out", "", "", "")
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is plugbox.CallTimeout and back.message == "timed out"
