"""The hostile battery: each plugin in tests/plugins/hostile makes one kind of
attack. Every test proves the attempt was made (the errno it got back, or a
marker printed just before a fatal syscall) and that it was stopped; after
an attack, a well-behaved plugin still answers.

Under the shipped default policy: socket() -> EACCES (and the supervisor logs it);
opening for writing -> EROFS; fork/exec -> EPERM; signals to other processes
-> EPERM; memfd_create -> EPERM (W+X memory is allowed, as ctypes callbacks
need it; strict refuses it); ptrace, bpf, io_uring,
keyctl, perf_event_open, userfaultfd, unshare, setns, mount,
process_vm_readv -> the worker is killed, plugbox exits 3 naming the plugin
and the syscall."""

import errno
import json
import os
import subprocess

import pytest

from pbtest import (EXIT_DIED, EXIT_OK, EXIT_SANDBOX, STDLIB, assert_killed_for, assert_reported, explain,
                    plugin_lines, result_of, scaled, x86_64_only)


@pytest.fixture(params=["exec", "fork-server", "zygote", "shared-zygote"])
def plugbox(request, plugbox):
    """Every attack four times: against a worker exec'd for its plugin,
    against one cloned from the fork-server's warm interpreter (--spawn
    fork-server), against one forked from its plugin's exec'd zygote
    (--spawn zygote), and against one forked from its plugin's zygote cloned
    from the fork-server (--spawn shared-zygote), which must all hold the
    same walls."""
    return plugbox.spawning(request.param)


@pytest.fixture
def still_fine(plugbox, paths):
    """Call after an attack: a good plugin in the same directory answers."""
    def check(plugins=None):
        assert plugbox.call_ok(plugins or paths.hostile, "good", "ping") == "pong"
    return check


def jstr(path):
    """A path as a JSON string argument."""
    return json.dumps(str(path))


def denied(result, expected_errno, expected_type=None):
    """result is {"type": exception type name or None, "errno": n} from the plugin."""
    assert result["errno"] == expected_errno, \
        f"expected errno {errno.errorcode[expected_errno]}, plugin got {result}"
    if expected_type:
        assert result["type"] == expected_type, result


# --- network ---

def test_socket_denied_in_every_family(plugbox, paths, still_fine):
    cp = plugbox.call(paths.hostile, "deny_socket", "families")
    assert cp.returncode == EXIT_OK, explain(cp)
    result = result_of(cp)
    assert result == {family: errno.EACCES for family in result} and len(result) == 5, result
    assert_reported(cp, "deny_socket", "socket")
    still_fine()


def test_connect_gets_permission_error(plugbox, paths, still_fine):
    cp = plugbox.call(paths.hostile, "deny_socket", "connect", '"127.0.0.1"', "9")
    assert cp.returncode == EXIT_OK, explain(cp)
    denied(result_of(cp), errno.EACCES, "PermissionError")
    assert_reported(cp, "deny_socket", "socket")
    still_fine()


# --- file system writes ---

@pytest.fixture
def target(open_dir):
    """A world-writable directory with one world-writable file in it."""
    directory = open_dir("target")
    existing = directory / "existing.txt"
    existing.write_text("original\n")
    os.chmod(existing, 0o666)
    return directory, existing


def _unchanged(directory, existing):
    assert sorted(os.listdir(directory)) == ["existing.txt"]
    assert existing.read_text() == "original\n"


@pytest.mark.parametrize("function, path", [
    ("create", "new.txt"),
    ("append", "existing.txt"),
    ("update", "existing.txt"),
])
def test_open_for_writing_gets_erofs(plugbox, paths, target, still_fine, function, path):
    directory, existing = target
    cp = plugbox.call(paths.hostile, "deny_write", function, jstr(directory / path))
    assert cp.returncode == EXIT_OK, explain(cp)
    denied(result_of(cp), errno.EROFS, "OSError")
    _unchanged(directory, existing)
    still_fine()


@pytest.mark.parametrize("function, args", [
    ("mkdir", ["newdir"]),
    ("unlink", ["existing.txt"]),
    ("rename", ["existing.txt", "renamed.txt"]),
])
def test_other_writes_leave_the_file_system_alone(plugbox, paths, target, still_fine, function, args):
    # The policy may answer with an errno or kill the worker; either way
    # nothing changes on disk.
    directory, existing = target
    cp = plugbox.call(paths.hostile, "deny_write", function, *[jstr(directory / a) for a in args])
    assert cp.returncode in (EXIT_OK, EXIT_SANDBOX), explain(cp)
    if cp.returncode == EXIT_OK:
        assert result_of(cp)["errno"] != 0, explain(cp)
    _unchanged(directory, existing)
    still_fine()


def test_plugin_cannot_modify_its_own_code(plugbox, paths, copy_plugins, still_fine):
    plugins = copy_plugins(paths.hostile, only=["deny_write", "good"])
    source = plugins / "deny_write" / "__init__.py"
    os.chmod(source, 0o666)
    before = source.read_text()
    cp = plugbox.call(plugins, "deny_write", "own_source")
    assert cp.returncode == EXIT_OK, explain(cp)
    denied(result_of(cp), errno.EROFS)
    assert source.read_text() == before
    still_fine(plugins)


def test_proc_self_mem_not_writable(plugbox, paths, still_fine):
    cp = plugbox.call(paths.hostile, "deny_write", "proc_self_mem")
    assert cp.returncode == EXIT_OK, explain(cp)
    denied(result_of(cp), errno.EROFS)
    still_fine()


# --- processes ---

@pytest.mark.parametrize("function", ["fork", "run_subprocess", "execv", "posix_spawn"])
def test_process_creation_gets_eperm(plugbox, paths, still_fine, function):
    cp = plugbox.call(paths.hostile, "deny_process", function)
    assert cp.returncode == EXIT_OK, explain(cp)
    denied(result_of(cp), errno.EPERM, "PermissionError")
    still_fine()


def test_os_system_fails(plugbox, paths, still_fine):
    cp = plugbox.call(paths.hostile, "deny_process", "system")
    assert cp.returncode == EXIT_OK, explain(cp)
    assert result_of(cp)["status"] != 0, explain(cp)
    still_fine()


# --- signals ---

def test_kill_parent_gets_eperm(plugbox, paths, still_fine):
    cp = plugbox.call(paths.hostile, "deny_signal", "kill_parent")
    assert cp.returncode == EXIT_OK, explain(cp)
    denied(result_of(cp), errno.EPERM, "PermissionError")
    still_fine()


def test_kill_everyone_gets_eperm(plugbox, paths, still_fine):
    cp = plugbox.call(paths.hostile, "deny_signal", "kill_everyone")
    assert cp.returncode == EXIT_OK, explain(cp)
    denied(result_of(cp), errno.EPERM, "PermissionError")
    still_fine()


def test_kill_another_process_gets_eperm(plugbox, paths, still_fine):
    decoy = subprocess.Popen(["/bin/sleep", "120"])
    try:
        cp = plugbox.call(paths.hostile, "deny_signal", "kill_decoy", str(decoy.pid))
        assert cp.returncode == EXIT_OK, explain(cp)
        result = result_of(cp)
        # EPERM from the filter, or ESRCH if the worker's PID namespace has no
        # such process; never success.
        assert result["errno"] in (errno.EPERM, errno.ESRCH), result
        assert decoy.poll() is None, "the decoy process was killed"
    finally:
        decoy.kill()
        decoy.wait()
    still_fine()


# --- memory ---

def test_writable_executable_memory_allowed_under_default_refused_under_strict(plugbox, paths, policies_with,
                                                                             still_fine):
    # DESIGN.md invariant 3: against a plugin that already runs native code
    # through ctypes, W^X protects nothing, and ctypes callbacks need it.
    control = plugbox.call_ok(paths.hostile, "deny_memory", "mmap_rw")
    assert control == {"type": None, "errno": 0}
    assert plugbox.call_ok(paths.hostile, "deny_memory", "mmap_rwx") == {"type": None, "errno": 0}
    # strict.policy keeps W^X
    policies = policies_with(deny_memory="@include strict\n")
    cp = plugbox.call(paths.hostile, "deny_memory", "mmap_rwx", options=["--policies", policies])
    assert cp.returncode == EXIT_OK, explain(cp)
    denied(result_of(cp), errno.EPERM, "PermissionError")
    still_fine()


def test_memfd_create_denied(plugbox, paths, still_fine):
    cp = plugbox.call(paths.hostile, "deny_memory", "memfd")
    assert cp.returncode == EXIT_OK, explain(cp)
    denied(result_of(cp), errno.EPERM, "PermissionError")
    still_fine()


# --- syscalls that only an attack makes: the worker is killed ---

KILLED_ON = ["ptrace", "bpf", "io_uring_setup", "keyctl", "perf_event_open", "userfaultfd",
             "unshare", "setns", "mount", "process_vm_readv"]


@x86_64_only
@pytest.mark.parametrize("syscall", KILLED_ON)
def test_dangerous_syscall_kills_the_worker(plugbox, paths, still_fine, syscall):
    plugin = "sys_" + syscall
    cp = plugbox.call(paths.hostile, plugin, "attack", options=["--timeout", "30"])
    # The attempt was made...
    assert f"[about to call {syscall}]" in plugin_lines(cp, plugin), explain(cp)
    # ...and stopped: exit 3, plugin and syscall named.
    assert_killed_for(cp, plugin, syscall)
    still_fine()


# --- the channel ---

def test_forged_frames_do_not_harm_the_supervisor(plugbox, paths, still_fine):
    cp = plugbox.call(paths.hostile, "relay_forgery", "forge", options=["--timeout", "20"], timeout=40)
    # The supervisor may take the worker down (protocol error) or never see
    # the bytes; it must not crash, hang or report success with garbage.
    assert cp.returncode in (EXIT_OK, 3, 4), explain(cp)
    if cp.returncode == EXIT_OK:
        assert isinstance(result_of(cp), list), explain(cp)
    else:
        assert cp.stdout == "", explain(cp)
    assert cp.elapsed < scaled(20), explain(cp)
    still_fine()


# --- the report socket: only the SIGSYS reporter and the listener hand-over
# write there; anything else is the plugin's forgery ---

@x86_64_only
@pytest.mark.parametrize("function, expected", [
    ("fake_listener", "passed a descriptor it had no business passing"),
    ("many_fds", "attached more descriptors to its report socket than a message may carry"),
    ("one_fd", "wrote a non-report on its report socket"),
    ("garbage", "wrote garbage on its report socket"),
])
def test_forged_reports_end_the_worker_not_the_supervisor(plugbox, paths, still_fine,
                                                           function, expected):
    cp = plugbox.call(paths.hostile, "report_forgery", function, options=["--timeout", "20"], timeout=40)
    # the bytes really went out...
    assert any(line.startswith(("[sent ", "[sending ")) for line in plugin_lines(cp, "report_forgery")), \
        explain(cp)
    # ...and the supervisor ended that worker for it, with a reason
    assert cp.returncode == EXIT_DIED, explain(cp)
    assert expected in cp.stderr, explain(cp)
    assert cp.elapsed < scaled(20), explain(cp)
    still_fine()


@x86_64_only
def test_forged_denials_are_bounded_and_cannot_reach_the_terminal(plugbox, paths, still_fine):
    # 5000 claimed denials, each with an escape sequence in its "traceback":
    # the supervisor shows 50, then says it stops showing them, and no
    # control character gets through.
    cp = plugbox.call(paths.hostile, "report_forgery", "fake_denials", "5000",
                      options=["--timeout", "20"], timeout=40)
    assert cp.returncode == EXIT_OK and result_of(cp) == 5000, explain(cp)
    denials = [l for l in cp.stderr.splitlines() if ": denied socket(" in l]
    assert len(denials) == 50, explain(cp)
    assert "further denials are not shown" in cp.stderr, explain(cp)
    assert "\x1b" not in cp.stderr and "\x07" not in cp.stderr, explain(cp)
    assert "\\x1b]0;owned\\x07\\x1b[2J" in cp.stderr, explain(cp)
    assert cp.elapsed < scaled(20), explain(cp)
    still_fine()


# --- code that must never run before the filter ---

PREFILTER_FILES = {
    "prefilter": ["deps/encodings/__init__.py", "deps/sitecustomize.py", "deps/usercustomize.py",
                  "deps/apport_python_hook.py", "deps/zz_prefilter.pth"],
    "prefilter_path": ["encodings/__init__.py", "sitecustomize.py", "usercustomize.py",
                       "apport_python_hook.py", "zz_prefilter.pth"],
}
PREFILTER_MARKERS = ["encodings", "sitecustomize", "usercustomize", "apport_python_hook", "pth"]


@pytest.mark.parametrize("plugin, function", [("prefilter", "ping"),
                                              ("prefilter_path", "plugbox.demo:ping")])
def test_startup_hooks_in_a_plugin_never_run(plugbox, paths, copy_plugins, open_dir, plugin, function):
    plugins = copy_plugins(paths.hostile, only=[plugin, "good"])
    markers = open_dir("markers")
    for rel in PREFILTER_FILES[plugin]:
        path = plugins / plugin / rel
        text = path.read_text()
        assert "@MARKER_DIR@" in text
        path.write_text(text.replace("@MARKER_DIR@", str(markers)))

    cp = plugbox.call(plugins, plugin, function)
    assert cp.returncode == EXIT_OK, explain(cp)
    result = result_of(cp)
    # The plugin's ordinary code works, with the standard library's encodings.
    assert result["answer"] == "pong"
    assert result["encodings_file"].startswith(STDLIB + "/"), result
    assert result["loaded"] == [], result
    # None of the start-up hooks ran: no marker file (they would have been
    # able to write one only before the filter) ...
    assert sorted(os.listdir(markers)) == [], "these ran before the filter: " + str(os.listdir(markers))
    # ... and none of the modules ran at all (a .pth may legitimately be
    # processed after the filter, so it is only held to the marker file).
    for name in PREFILTER_MARKERS[:-1]:
        assert f"PREFILTER MARKER: {name} ran" not in cp.stderr, explain(cp)
    # The same plugin listed: no hook runs either.
    cp = plugbox.list(plugins)
    assert cp.returncode == EXIT_OK, explain(cp)
    assert "PREFILTER MARKER" not in cp.stderr, explain(cp)
    assert os.listdir(markers) == []
    plugbox.call_ok(plugins, "good", "ping")


# --- what a plugin may read (DESIGN: a plugin sees its own code, its deps
# and the standard library; nothing else of the host or of other plugins) ---

def test_sibling_plugin_not_readable(plugbox, paths, copy_plugins):
    plugins = copy_plugins(paths.seed)
    copy_plugins(paths.hostile, only=["snoop"])
    sibling = plugins / "plug2" / "deps" / "requests" / "__init__.py"
    assert "2.3.0" in sibling.read_text()
    result = plugbox.call_ok(plugins, "snoop", "read", jstr(sibling))
    assert result["data"] is None and result["errno"] != 0, result


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/etc/shadow"),
                    reason="only meaningful when plugbox runs as root")
def test_host_secrets_not_readable(plugbox, paths):
    result = plugbox.call_ok(paths.hostile, "snoop", "read", '"/etc/shadow"')
    # (never print what was read: it would be the host's password hashes)
    assert result["data"] is None and result["errno"] != 0, \
        f"the plugin read {len(result['data'] or '')} characters of /etc/shadow"


def test_other_processes_environment_not_readable(plugbox, paths):
    secret = "plugbox-test-secret-0451"
    decoy = subprocess.Popen(["/bin/sleep", "120"], env={"PB_SECRET": secret})
    try:
        # Another process of the host...
        result = plugbox.call_ok(paths.hostile, "snoop", "read", jstr(f"/proc/{decoy.pid}/environ"))
        assert secret not in (result["data"] or ""), "read another process's environment"
        # ...and the supervisor itself.
        result = plugbox.call_ok(paths.hostile, "snoop", "parent_environ", env={"PB_SECRET": secret})
        assert secret not in (result["data"] or ""), "read the supervisor's environment"
    finally:
        decoy.kill()
        decoy.wait()
