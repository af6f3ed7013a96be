"""Policies at run time: what a plugin's policy does to its calls, as a user
sees it on stdout, stderr and in the exit status.

The plugins are tests/plugins/policy/*. Each test runs them under a
policies directory built in scratch: copies of the shipped policies
($PLUGBOX_POLICIES) plus the test's own files from tests/policies/NAME/
(a NAME.policy for the plugin, or a default.policy replacing the shipped
one). Line numbers in the expected reports are read from those files, so
editing a shipped policy does not break the tests.

Each isolation test proves the attempt was made (the plugin prints a marker
first, or a TCP listener the test runs shows what arrived) and that it was
stopped. x86_64 syscall numbers (the plugins make raw syscalls).
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pbtest import (EXIT_OK, EXIT_SANDBOX, assert_one_error_line, explain, preload_sanitizers,
                    plugin_lines, result_of, supervisor_lines, x86_64_only)

pytestmark = x86_64_only

EACCES, EPERM, EXDEV, ENOLINK, ENOSYS = 13, 1, 18, 67, 38

# pb_stream and pb_error_kind values of include/plugbox.h
STREAM_SUPERVISOR = 3
ERROR_CONFIG = 3


# ---- fixtures --------------------------------------------------------------

@pytest.fixture(scope="module")
def shipped_policies(paths):
    env = os.environ.get("PLUGBOX_POLICIES")
    return Path(env) if env else paths.srcdir.parent / "policies"


@pytest.fixture
def plugins(paths):
    return paths.plugins / "policy"


@pytest.fixture
def policies(scratch, paths, shipped_policies):
    """policies(name) -> a directory holding copies of the shipped policies
    and then tests/policies/name/*.policy (which may replace one of them).
    policies(None) -> the shipped policies alone."""
    def make(name, dest=None):
        target = scratch / (dest or f"policies-{name or 'shipped'}")
        target.mkdir()
        for f in sorted(shipped_policies.glob("*.policy")):
            shutil.copy(f, target / f.name)
        if name is not None:
            own = sorted((paths.srcdir / "policies" / name).glob("*.policy"))
            assert own, f"tests/policies/{name} holds no policy"
            for f in own:
                shutil.copy(f, target / f.name)
        for f in target.iterdir():
            os.chmod(f, 0o644)
        os.chmod(target, 0o755)
        return target
    return make


def line_of(policy_file, text):
    """The 1-based number of the line of policy_file that starts with text."""
    numbers = [i for i, line in enumerate(Path(policy_file).read_text().splitlines(), 1)
               if line.strip().startswith(text)]
    assert len(numbers) == 1, f"{text!r} should start exactly one line of {policy_file}"
    return numbers[0]


# ---- a host program: one supervisor, several plugins (libplugbox.so) --------

# Runs in its own process (a crash must not take pytest with it). argv[1]:
# libplugbox.so; argv[2]: {"plugins", "policies", "calls": [[plugin,
# function, [json args]]...]}. Prints, as JSON, one record per call: the
# result or the error, and the output lines the supervisor gave for it.
HOST = r"""
import ctypes, json, sys
from ctypes import POINTER, byref, c_char_p, c_int, c_size_t, c_void_p

lib = ctypes.CDLL(sys.argv[1])
spec = json.loads(sys.argv[2])
libc = ctypes.CDLL(None)
libc.open_memstream.restype = c_void_p
libc.open_memstream.argtypes = [POINTER(c_void_p), POINTER(c_size_t)]
libc.fclose.argtypes = [c_void_p]
libc.free.argtypes = [c_void_p]
lib.pb_supervisor_new.argtypes = [c_char_p, POINTER(c_void_p)]
lib.pb_supervisor_set_policies.argtypes = [c_void_p, c_char_p]
lib.pb_supervisor_set_timeout.argtypes = [c_void_p, ctypes.c_double]
lib.pb_supervisor_strerror.argtypes = [c_void_p]
lib.pb_supervisor_strerror.restype = c_char_p
OUTPUT = ctypes.CFUNCTYPE(None, c_void_p, c_char_p, c_int, c_char_p)
lib.pb_supervisor_set_output.argtypes = [c_void_p, OUTPUT, c_void_p]
lib.pb_supervisor_free.argtypes = [c_void_p]
lib.pb_value_parse_json.argtypes = [c_char_p, POINTER(c_void_p)]
lib.pb_value_parse_json.restype = c_void_p
lib.pb_value_print_json.argtypes = [c_void_p, c_void_p]
lib.pb_value_destroy.argtypes = [c_void_p]
lib.pb_call.argtypes = [c_void_p, c_char_p, c_char_p, POINTER(c_void_p), c_size_t,
                        POINTER(c_void_p), POINTER(c_void_p)]
for name in ("plugin", "type", "message", "traceback"):
    f = getattr(lib, "pb_error_get_" + name)
    f.argtypes, f.restype = [c_void_p], c_char_p
lib.pb_error_get_kind.argtypes, lib.pb_error_get_kind.restype = [c_void_p], c_int
lib.pb_error_free.argtypes = [c_void_p]

lines = []
def on_output(data, plugin, stream, line):
    lines.append([plugin.decode(), stream, line.decode("utf-8", "replace")])
on_output_c = OUTPUT(on_output)

sup = c_void_p()
assert lib.pb_supervisor_new(spec["plugins"].encode(), byref(sup)) == 0
assert lib.pb_supervisor_set_policies(sup, spec["policies"].encode()) == 0, \
    lib.pb_supervisor_strerror(sup)
lib.pb_supervisor_set_timeout(sup, 30.0)
lib.pb_supervisor_set_output(sup, on_output_c, None)

def to_json(value):
    buf, size = c_void_p(), c_size_t()
    f = libc.open_memstream(byref(buf), byref(size))
    lib.pb_value_print_json(value, f)
    libc.fclose(f)
    text = ctypes.string_at(buf, size.value).decode()
    libc.free(buf)
    return json.loads(text)

records = []
for plugin, function, args in spec["calls"]:
    del lines[:]
    values = (c_void_p * max(len(args), 1))(*[lib.pb_value_parse_json(a.encode(), None) for a in args])
    result, err = c_void_p(), c_void_p()
    rc = lib.pb_call(sup, plugin.encode(), function.encode(), values, len(args), byref(result), byref(err))
    record = {"plugin": plugin, "function": function, "rc": rc}
    if rc == 0:
        record["result"] = to_json(result)
        lib.pb_value_destroy(result)
    else:
        record["error"] = {"kind": lib.pb_error_get_kind(err),
                           "plugin": lib.pb_error_get_plugin(err).decode(),
                           "message": lib.pb_error_get_message(err).decode(),
                           "traceback": lib.pb_error_get_traceback(err).decode()}
        lib.pb_error_free(err)
    for i in range(len(args)):
        lib.pb_value_destroy(values[i])
    record["output"] = list(lines)
    records.append(record)
lib.pb_supervisor_free(sup)
print(json.dumps(records))
"""


@pytest.fixture(scope="module")
def libplugbox():
    lib = Path(os.environ["PLUGBOX"]).resolve().parent / ".libs" / "libplugbox.so"
    if not lib.exists():
        pytest.skip(f"{lib} is not built (make libplugbox.la; make check builds it)")
    return lib


@pytest.fixture
def host(libplugbox):
    """host(plugins, policies, calls) -> one record per call (see HOST),
    all calls made by one supervisor in one host process."""
    def run(plugins, policies, calls):
        spec = {"plugins": str(plugins), "policies": str(policies),
                "calls": [[p, f, [json.dumps(a) for a in args]] for p, f, *args in calls]}
        proc = subprocess.run([sys.executable, "-c", HOST, str(libplugbox), json.dumps(spec)],
                              capture_output=True, text=True, timeout=120, env=preload_sanitizers(os.environ),
                              start_new_session=True)
        assert proc.returncode == 0, f"host program failed:\n{proc.stdout}\n{proc.stderr}"
        return json.loads(proc.stdout)
    return run


def supervisor_notes(record):
    return [line for plugin, stream, line in record["output"]
            if stream == STREAM_SUPERVISOR and plugin == record["plugin"]]


def plugin_said(record):
    return [line for plugin, stream, line in record["output"]
            if stream != STREAM_SUPERVISOR and plugin == record["plugin"]]


# ---- 1. two plugins, two policies, one supervisor ----------------------------

def test_two_plugins_with_different_policies_in_one_supervisor(host, copy_plugins, plugins,
                                                                policies, listener):
    """netok and netno are the same code. netok.policy includes the shipped
    network-client policy; netno has none, so default (python.policy)
    decides. One supervisor runs both: netok's bytes reach the listener,
    netno's socket() fails with EACCES and is reported, with the plugin's
    Python stack."""
    plugin_set = copy_plugins(plugins, only=["netclient"])
    for name in ("netok", "netno"):
        shutil.copytree(plugin_set / "netclient", plugin_set / name)
    shutil.rmtree(plugin_set / "netclient")
    pol = policies("network")
    assert (pol / "netok.policy").exists() and not (pol / "netno.policy").exists()
    socket_rule = line_of(pol / "python.policy", "socket: trap EACCES")

    first, denied, second = host(plugin_set, pol, [
        ("netok", "send", listener.port, "from netok 1"),
        ("netno", "send", listener.port, "from netno"),
        ("netok", "send", listener.port, "from netok 2"),
    ])
    received = listener.received()

    for rec in (first, second):
        assert rec["rc"] == 0 and rec["result"] == {"sent": 12}, rec
        assert supervisor_notes(rec) == [], rec
    assert sorted(received) == [b"from netok 1", b"from netok 2"]

    # netno tried (its marker), was refused at socket(), and nothing arrived
    assert denied["rc"] == 0, denied
    assert "[about to open a socket]" in plugin_said(denied), denied
    assert denied["result"] == {"type": "PermissionError", "errno": EACCES, "step": "socket"}
    assert not any(b"netno" in data for data in received)
    notes = supervisor_notes(denied)
    report = [n for n in notes if n.startswith("denied socket(")]
    assert len(report) == 1, notes
    assert re.match(r"denied socket\(0x2, 0x[0-9a-f]+, ", report[0]), report[0]
    assert report[0].endswith(f": EACCES by rule 'socket: trap EACCES' at python.policy:{socket_rule}"), \
        report[0]
    stack = notes[notes.index(report[0]) + 1:]
    assert any(re.search(r'File ".*/netno/__init__\.py", line \d+ in send', n) for n in stack), notes
    # netok's two calls ran in one worker, netno's denial did not disturb it
    assert plugin_said(second) == ["[about to open a socket]"]


# ---- 2. every action, end to end ----------------------------------------------

def call_actions(plugbox, plugins, pol, function):
    return plugbox.call(plugins, "actions", function, options=["--policies", pol])


def python_stack_names(text, plugin, function):
    return re.search(rf'File ".*/{plugin}/__init__\.py", line \d+ in {function}\b', text)


def test_allow_lets_an_unnamed_syscall_through(plugbox, plugins, policies):
    pol = policies("action-allow")
    cp = call_actions(plugbox, plugins, pol, "getcpu")
    assert cp.returncode == EXIT_OK, explain(cp)
    assert result_of(cp) == {"rc": 0, "errno": 0}
    assert supervisor_lines(cp, "actions") == [], explain(cp)
    # without the rule, python.policy's @default refuses the same call
    cp = call_actions(plugbox, plugins, policies(None), "getcpu")
    assert cp.returncode == EXIT_OK and result_of(cp) == {"rc": -1, "errno": ENOSYS}, explain(cp)


def test_return_fails_the_call_silently(plugbox, plugins, policies):
    cp = call_actions(plugbox, plugins, policies("action-return"), "getppid")
    assert cp.returncode == EXIT_OK, explain(cp)
    assert result_of(cp) == {"rc": -1, "errno": EXDEV}
    assert plugin_lines(cp, "actions") == ["[about to call getppid]"]
    assert supervisor_lines(cp, "actions") == [], "return E must not be reported" + explain(cp)


def test_trap_fails_the_call_and_reports_it(plugbox, plugins, policies):
    pol = policies("action-trap")
    line = line_of(pol / "actions.policy", "getppid: trap ENOLINK")
    cp = call_actions(plugbox, plugins, pol, "getppid")
    assert cp.returncode == EXIT_OK, explain(cp)
    assert result_of(cp) == {"rc": -1, "errno": ENOLINK}
    notes = supervisor_lines(cp, "actions")
    report = [n for n in notes if "denied getppid(" in n]
    assert len(report) == 1, explain(cp)
    assert report[0].startswith("plugbox: plugin 'actions': denied getppid(0x"), explain(cp)
    assert report[0].endswith(f": ENOLINK by rule 'getppid: trap ENOLINK' at actions.policy:{line}"), \
        explain(cp)
    assert python_stack_names(cp.stderr, "actions", "getppid"), explain(cp)


def test_kill_ends_the_worker_with_a_full_report(plugbox, plugins, policies):
    pol = policies("action-kill")
    line = line_of(pol / "actions.policy", "getppid: kill")
    cp = call_actions(plugbox, plugins, pol, "getppid")
    assert cp.returncode == EXIT_SANDBOX, explain(cp)
    assert cp.stdout == ""
    assert plugin_lines(cp, "actions") == ["[about to call getppid]"], explain(cp)
    message = [n for n in supervisor_lines(cp, "actions") if "stopped by the sandbox" in n]
    assert len(message) == 1, explain(cp)
    assert re.fullmatch(r"plugbox: plugin 'actions' stopped by the sandbox: "
                        r"getppid\((0x[0-9a-f]+|0)(, (0x[0-9a-f]+|0)){5}\) is not allowed by rule "
                        rf"'getppid: kill' at actions\.policy:{line}", message[0]), explain(cp)
    assert python_stack_names(cp.stderr, "actions", "getppid"), explain(cp)
    assert python_stack_names(cp.stderr, "actions", "_raw"), explain(cp)


def test_log_allows_the_call_and_the_kernel_tells_the_supervisor(plugbox, plugins, policies):
    pol = policies("action-log")
    line = line_of(pol / "actions.policy", "getppid: log")
    cp = call_actions(plugbox, plugins, pol, "getppid")
    assert cp.returncode == EXIT_OK, explain(cp)
    result = result_of(cp)
    # it ran: the parent is outside the worker's pid namespace, so 0
    assert result["errno"] == 0 and result["rc"] == 0, explain(cp)
    logged = [n for n in supervisor_lines(cp, "actions") if "logged getppid(" in n]
    assert len(logged) == 1, explain(cp)
    assert logged[0].startswith("plugbox: plugin 'actions': logged getppid(")
    assert logged[0].endswith(f" by rule 'getppid: log' at actions.policy:{line}"), explain(cp)


def test_logging_sendmsg_does_not_block_the_listener_hand_over(plugbox, plugins, policies):
    # The worker passes its listener to the supervisor with sendmsg; were
    # that call logged, it would wait for a supervisor without the listener
    # until the call timed out.
    pol = policies("log-sendmsg")
    cp = plugbox.call(plugins, "actions", "getppid", options=["--policies", pol, "--timeout", "10"])
    assert cp.returncode == EXIT_OK, explain(cp)
    assert result_of(cp)["errno"] == 0, explain(cp)
    assert "timed out" not in cp.stderr, explain(cp)


def test_default_trap_enosys_refuses_an_unnamed_syscall_reports_it_and_goes_on(plugbox, plugins,
                                                                               policies):
    """DESIGN.md invariant 3: what the shipped policy does not name fails
    with ENOSYS, is reported like a trap rule's denial, and the call still
    returns its result."""
    pol = policies(None)
    line = line_of(pol / "python.policy", "@default trap ENOSYS")
    cp = call_actions(plugbox, plugins, pol, "getcpu")
    assert cp.returncode == EXIT_OK, explain(cp)
    assert result_of(cp) == {"rc": -1, "errno": ENOSYS}, explain(cp)
    assert plugin_lines(cp, "actions") == ["[about to call getcpu]"], explain(cp)
    notes = supervisor_lines(cp, "actions")
    report = [n for n in notes if "denied getcpu(" in n]
    assert len(report) == 1, explain(cp)
    assert report[0].startswith("plugbox: plugin 'actions': denied getcpu(0, 0, 0, "), explain(cp)
    assert report[0].endswith(f": ENOSYS by rule '@default trap ENOSYS' at python.policy:{line} "
                              "(no rule of policy 'default' decided)"), explain(cp)
    assert python_stack_names(cp.stderr, "actions", "getcpu"), explain(cp)
    assert "stopped by the sandbox" not in cp.stderr, explain(cp)


def test_unnamed_syscall_reports_are_bounded_and_counted(plugbox, plugins, policies):
    """A plugin that keeps making a refused call goes on working; the
    supervisor shows the first 50 reports and then says how many it did
    not show."""
    cp = call_actions(plugbox, plugins, policies(None), "getcpu_many")
    assert cp.returncode == EXIT_OK, explain(cp)
    assert result_of(cp) == {"calls": 200, "enosys": 200}, explain(cp)
    notes = supervisor_lines(cp, "actions")
    assert len([n for n in notes if "denied getcpu(" in n]) == 50, explain(cp)
    assert "plugbox: plugin 'actions': further denials are not shown" in notes, explain(cp)
    assert "plugbox: plugin 'actions': 150 more denials or logged calls were not shown" in notes, explain(cp)


def test_default_kill_decides_an_unnamed_syscall(plugbox, plugins, policies):
    """A policy that says `@default kill` gets exactly that."""
    pol = policies("default-kill")
    line = line_of(pol / "actions.policy", "@default kill")
    cp = call_actions(plugbox, plugins, pol, "getcpu")
    assert cp.returncode == EXIT_SANDBOX, explain(cp)
    assert plugin_lines(cp, "actions") == ["[about to call getcpu]"], explain(cp)
    message = [n for n in supervisor_lines(cp, "actions") if "stopped by the sandbox" in n]
    assert len(message) == 1, explain(cp)
    assert "getcpu(0, 0, 0, " in message[0], explain(cp)
    assert f"'@default kill' at actions.policy:{line}" in message[0], explain(cp)
    assert python_stack_names(cp.stderr, "actions", "getcpu"), explain(cp)


def test_default_errno_fails_an_unnamed_syscall(plugbox, plugins, policies):
    cp = call_actions(plugbox, plugins, policies("default-errno"), "getcpu")
    assert cp.returncode == EXIT_OK, explain(cp)
    assert result_of(cp) == {"rc": -1, "errno": EPERM}
    assert plugin_lines(cp, "actions") == ["[about to call getcpu]"]
    assert supervisor_lines(cp, "actions") == [], explain(cp)


# ---- 3. the violation report -------------------------------------------------

def test_violation_report_names_plugin_call_rule_and_python_stack(plugbox, plugins, policies):
    """f() calls g(), which calls ptrace(PTRACE_PEEKDATA, 1, 0, 0)."""
    pol = policies(None)
    line = line_of(pol / "python.policy", "@attack: kill")
    cp = plugbox.call(plugins, "nested_ptrace", "f", options=["--policies", pol])
    assert cp.returncode == EXIT_SANDBOX, explain(cp)
    assert cp.stdout == ""
    assert plugin_lines(cp, "nested_ptrace") == ["[about to call ptrace]"], explain(cp)
    lines = supervisor_lines(cp, "nested_ptrace")
    assert lines[0].startswith("plugbox: plugin 'nested_ptrace' stopped by the sandbox: "
                               "ptrace(0x2, 0x1, 0, 0, "), explain(cp)
    assert lines[0].endswith(f" is not allowed by rule '@attack: kill' at python.policy:{line}"), explain(cp)
    frames = [n.strip() for n in lines[1:] if n.strip().startswith("File ")]
    mine = [n for n in frames if "/nested_ptrace/__init__.py" in n]
    assert [re.search(r"in (\w+)$", n).group(1) for n in mine] == ["g", "f"], explain(cp)


# ---- 4. games with the reporter -------------------------------------------------

def test_replacing_the_sigsys_handler_ends_the_worker(plugbox, plugins):
    cp = plugbox.call(plugins, "handler_games", "replace_handler")
    assert cp.returncode == EXIT_SANDBOX, explain(cp)
    assert cp.stdout == ""
    assert plugin_lines(cp, "handler_games") == ["[about to replace the SIGSYS handler]"], explain(cp)
    assert "plugin 'handler_games' stopped by the sandbox: killed by the seccomp filter without a report" \
        in cp.stderr, explain(cp)


def test_blocking_sigsys_does_not_get_past_a_kill(plugbox, plugins):
    cp = plugbox.call(plugins, "handler_games", "block_then_ptrace")
    assert cp.returncode == EXIT_SANDBOX, explain(cp)
    assert cp.stdout == "", "the plugin went on after ptrace" + explain(cp)
    assert plugin_lines(cp, "handler_games") == [
        "[about to block SIGSYS]", "[SIGSYS blocked: True; about to call ptrace]"], explain(cp)
    assert "plugin 'handler_games' stopped by the sandbox: killed by the seccomp filter" in cp.stderr, \
        explain(cp)


# ---- 5. strict ------------------------------------------------------------------

def test_strict_forbids_opening_files_in_calls_not_at_import(plugbox, plugins, policies):
    # one of its own files: nothing else is in the worker's file system
    target = plugins / "strictplug" / "data" / "greeting.txt"
    strict, default = policies("strict"), policies(None)
    assert "strictplug.policy" not in os.listdir(default)

    # what the plugin read at import time, under strict and under default
    for pol in (strict, default):
        assert plugbox.call_ok(plugins, "strictplug", "imported", options=["--policies", pol]) == \
            {"helper": "helper imported", "greeting": "hello from data"}

    cp = plugbox.call(plugins, "strictplug", "read", json.dumps(str(target)), options=["--policies", strict])
    assert cp.returncode == EXIT_OK, explain(cp)
    assert plugin_lines(cp, "strictplug") == ["[about to open a file]"]
    assert result_of(cp) == {"type": "PermissionError", "errno": EACCES}

    cp = plugbox.call(plugins, "strictplug", "read", json.dumps(str(target)), options=["--policies", default])
    assert cp.returncode == EXIT_OK, explain(cp)
    assert result_of(cp) == {"text": target.read_text()}


# ---- 6. learn -------------------------------------------------------------------

def test_learn_prints_a_policy_that_lets_the_call_pass(plugbox, plugins, policies, listener):
    pol = policies(None)
    cp = plugbox.run(["learn", "--plugins", plugins, "--policies", pol,
                      "learner", "needs_net", str(listener.port), '"learned"'])
    assert cp.returncode == EXIT_OK, explain(cp)
    # under learn the call itself went through
    assert 'plugbox: learn: learner needs_net returned: {"sent":7,"unsent":0}' in cp.stderr, explain(cp)
    learned = cp.stdout.splitlines()
    rules = [n for n in learned if n and not n.startswith("#")]
    socket_lines = [n for n in rules if n.startswith("socket:")]
    assert len(socket_lines) == 1, explain(cp)
    assert re.fullmatch(r"socket: arg0 == AF_INET && arg1 == SOCK_STREAM\|SOCK_CLOEXEC && arg2 == \S+",
                        socket_lines[0]), explain(cp)
    assert "ioctl: arg1 == TIOCOUTQ" in rules, explain(cp)
    assert "connect: 1" in rules, explain(cp)
    assert rules[-2:] == ["@network host", "@include default"], explain(cp)

    (pol / "learner.policy").write_text(cp.stdout)
    os.chmod(pol / "learner.policy", 0o644)
    cp = plugbox.call(plugins, "learner", "needs_net", str(listener.port), '"enforced"',
                      options=["--policies", pol])
    assert cp.returncode == EXIT_OK, explain(cp)
    assert result_of(cp) == {"sent": 8, "unsent": 0}
    assert supervisor_lines(cp, "learner") == [], explain(cp)
    assert listener.received() == [b"learned", b"enforced"]

    # what the learned call never did is still refused, and reported
    cp = plugbox.call(plugins, "learner", "other_family", options=["--policies", pol])
    assert cp.returncode == EXIT_OK, explain(cp)
    assert result_of(cp) == {"type": "PermissionError", "errno": EACCES}
    assert any(n.startswith("plugbox: plugin 'learner': denied socket(0xa, ")
               for n in supervisor_lines(cp, "learner")), explain(cp)


def test_learn_does_not_let_killed_syscalls_through(plugbox, plugins, policies):
    """Learning a policy for a plugin must not hand it what only an attack
    does: ptrace stays fatal under learn as under call."""
    cp = plugbox.run(["learn", "--plugins", plugins, "--policies", policies(None), "nested_ptrace", "f"])
    assert plugin_lines(cp, "nested_ptrace") == ["[about to call ptrace]"], explain(cp)
    assert "survived" not in cp.stdout + cp.stderr, "ptrace ran under learn" + explain(cp)
    assert cp.returncode == EXIT_SANDBOX, explain(cp)


# ---- 7. a bad policy at call time ---------------------------------------------

def test_typo_in_default_policy_is_one_line_with_file_line_col(plugbox, plugins, policies):
    pol = policies("typo")
    line = line_of(pol / "default.policy", "getppid: alow")
    cp = call_actions(plugbox, plugins, pol, "getppid")
    error = assert_one_error_line(cp, f"{pol}/default.policy:{line}:")
    assert re.search(rf"default\.policy:{line}:\d+: ", error), error
    assert "[actions]" not in cp.stderr   # no worker ran


def test_missing_policies_dir_is_a_usage_error(plugbox, plugins, scratch):
    cp = call_actions(plugbox, plugins, scratch / "no-such-dir", "getppid")
    assert_one_error_line(cp, "--policies", str(scratch / "no-such-dir"))


def test_broken_name_policy_affects_only_that_plugin(plugbox, host, plugins, policies):
    pol = policies("broken-name")
    line = line_of(pol / "actions.policy", "getppid: trap ENOSUCHERRNO")
    where = f"{pol}/actions.policy:{line}:"

    broken, other, again = host(plugins, pol, [
        ("actions", "getppid"),
        ("strictplug", "imported"),
        ("actions", "getppid"),
    ])
    for rec in (broken, again):
        assert rec["rc"] < 0 and rec["error"]["kind"] == ERROR_CONFIG, rec
        assert where in rec["error"]["message"] and "ENOSUCHERRNO" in rec["error"]["message"], rec
        assert plugin_said(rec) == [], rec
    assert other["rc"] == 0, other
    assert other["result"] == {"helper": "helper imported", "greeting": "hello from data"}

    cp = call_actions(plugbox, plugins, pol, "getppid")
    assert_one_error_line(cp, "plugin 'actions'", where)
    assert plugbox.call_ok(plugins, "strictplug", "imported", options=["--policies", pol])["helper"] == \
        "helper imported"
