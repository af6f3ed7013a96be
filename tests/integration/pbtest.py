"""Helpers shared by plugbox's integration tests (imported by conftest.py and
the test modules; fixtures live in conftest.py).

Everything here encodes the command-line contract the tests check:

- the result is ONE line of compact JSON on stdout;
- a usage/configuration error is exactly one stderr line starting "plugbox: ";
- a plugin's own output reaches plugbox's stderr as lines prefixed "[NAME] ";
  every other stderr line is the supervisor's own.
"""

import json
import os
import platform
import re
import signal
import subprocess
import sysconfig
import time

import pytest

# The worker's import path ends with exactly these two entries (Debian's
# CPython 3.11, the interpreter plugbox embeds and the one running the tests).
STDLIB = sysconfig.get_path("stdlib")
DYNLOAD = sysconfig.get_config_var("DESTSHARED")

EXIT_OK = 0
EXIT_RAISED = 1
EXIT_USAGE = 2
EXIT_SANDBOX = 3
EXIT_DIED = 4

# How much slower than usual plugbox runs: `make valgrind-check` runs it under
# memcheck with PB_TEST_TIME_SCALE=3. Waits and the upper bounds of timing
# assertions are stretched by it (scaled()); lower bounds are not.
TIME_SCALE = float(os.environ.get("PB_TEST_TIME_SCALE") or 1)


def scaled(seconds):
    """A time limit in seconds, stretched by PB_TEST_TIME_SCALE."""
    return seconds * TIME_SCALE


def p99(values):
    return sorted(values)[max(0, int(len(values) * 0.99) - 1)]


# How late a sibling's call may be during a flood beyond twice its usual
# p99. On a machine as small as CI's (2 CPUs) the flooding worker, the
# supervisor handling its bytes, the sibling's worker and the test's own
# client share two CPUs, so a call that wakes behind a busy task waits a
# scheduler slice or two whatever plugbox does: CI saw 0.93 -> 2.38 ms
# during 5,000 refused host calls that kept the supervisor busy. What the
# flood tests guard against, a supervisor that stalls on a stream or
# serves one worker's backlog before anyone else, costs tens of
# milliseconds and more.
PACE_SLACK = 0.005


def check_on_pace(before, during, after, what="the flood"):
    """The sibling's p99 during a flood within twice its usual p99 (the
    higher of just before and just after: the load of other processes
    drifts over seconds, and the flood sits between them) plus
    PACE_SLACK."""
    usual, now = max(p99(before), p99(after)), p99(during)
    allowed = 2 * usual + scaled(PACE_SLACK)
    assert now <= allowed, \
        f"the sibling's p99 rose from {usual * 1e3:.2f} ms to {now * 1e3:.2f} ms during {what}, " \
        f"more than the {allowed * 1e3:.2f} ms allowed (before {p99(before) * 1e3:.2f} ms, " \
        f"after {p99(after) * 1e3:.2f} ms; {len(during)} calls)"


x86_64_only = pytest.mark.skipif(
    platform.machine() != "x86_64",
    reason="the hostile plugins use x86_64 syscall numbers")


class Plugbox:
    """Runs the plugbox command. Every run gets a fresh process group, so a
    run that outlives its timeout is killed together with its workers."""

    def __init__(self, exe, env, spawn=None):
        self.exe = exe
        self.env = env
        # How call and list start workers: None is the default (exec).
        self.spawn_options = ("--spawn", spawn) if spawn else ()

    def spawning(self, mode):
        """The same runner, with call and list starting workers `mode`."""
        return Plugbox(self.exe, self.env, spawn=mode)

    def run(self, args, timeout=60, env=None, input=None):
        """Run plugbox ARGS; fail the test if it is still running after
        timeout seconds (stretched by PB_TEST_TIME_SCALE)."""
        timeout = scaled(timeout)
        full_env = dict(self.env)
        if env:
            full_env.update(env)
        argv = [self.exe, *[str(a) for a in args]]
        start = time.monotonic()
        proc = subprocess.Popen(
            argv, env=full_env, text=True, encoding="utf-8", errors="backslashreplace",
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        try:
            stdout, stderr = proc.communicate(input=input, timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            pytest.fail(f"plugbox {' '.join(argv[1:])} still running after {timeout} s\n"
                        f"--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}")
        cp = subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)
        cp.elapsed = time.monotonic() - start
        # (or, under shared-zygote, its zygotes: "starting zygotes with exec")
        if self.spawn_options and "with exec from now on" in stderr:
            pytest.fail(f"plugbox {' '.join(argv[1:])} fell back to exec:\n{stderr}")
        return cp

    def call(self, plugins, plugin, function, *json_args, options=(), **kw):
        return self.run(["call", "--plugins", plugins, *self.spawn_options, *options, plugin, function,
                         *json_args], **kw)

    def call_ok(self, plugins, plugin, function, *json_args, options=(), **kw):
        """Call, require exit 0 and one line of JSON on stdout, return the value."""
        cp = self.call(plugins, plugin, function, *json_args, options=options, **kw)
        assert cp.returncode == EXIT_OK, explain(cp)
        return result_of(cp)

    def list(self, plugins, as_json=False, workers=True, **kw):
        """plugbox list; workers=True (--workers) has each worker describe
        its plugin, as the tests written before discovery expect."""
        return self.run(["list", "--plugins", plugins, *self.spawn_options, *(["--json"] if as_json else []),
                         *(["--workers"] if workers else [])], **kw)


def worker_pids(parent=None):
    """The plugins' plugbox-worker processes whose parent is `parent`
    (default: this process, a host on libplugbox), seen from the host; not
    the `plugbox-worker --install` helpers (an unpacker, the compiler of a
    bytecode cache). Shared with tests/python (pbpy.py)."""
    parent = os.getpid() if parent is None else parent
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        # a zombie is not a worker any more
        if int(fields[1]) == parent and fields[0] != "Z" and argv[0].endswith(b"plugbox-worker") and \
                argv[1:2] != [b"--install"]:
            found.append(int(entry))
    return found


def explain(cp):
    """What to show when an assertion on a plugbox run fails."""
    return (f"\n$ plugbox {' '.join(cp.args[1:])}\nexit status {cp.returncode}"
            f"\n--- stdout ---\n{cp.stdout}--- stderr ---\n{cp.stderr}")


def result_of(cp):
    """The call's result: stdout must be exactly one line of JSON."""
    assert cp.stdout.endswith("\n") and cp.stdout.count("\n") == 1, \
        "stdout is not exactly one line" + explain(cp)
    return json.loads(cp.stdout)


def stderr_lines(cp):
    return [line for line in cp.stderr.splitlines() if line.strip()]


def plugin_lines(cp, name):
    """What the plugin NAME printed (prefix removed)."""
    prefix = f"[{name}] "
    return [line[len(prefix):] for line in cp.stderr.splitlines() if line.startswith(prefix)]


def supervisor_lines(cp, name):
    """stderr lines that are not the plugin NAME's own output."""
    prefix = f"[{name}] "
    return [line for line in stderr_lines(cp) if not line.startswith(prefix)]


def assert_one_error_line(cp, *must_contain):
    """Exit 2 with exactly one stderr line, starting 'plugbox: ', that
    contains every string in must_contain. Returns that line."""
    assert cp.returncode == EXIT_USAGE, explain(cp)
    lines = stderr_lines(cp)
    assert len(lines) == 1, "expected exactly one line on stderr" + explain(cp)
    assert lines[0].startswith("plugbox: "), explain(cp)
    for text in must_contain:
        assert text in lines[0], f"{text!r} not in the error line" + explain(cp)
    assert cp.stdout == "", explain(cp)
    return lines[0]


def names_word(lines, word):
    """True if some line contains word as a whole word (so that the syscall
    'ptrace' is not found inside the plugin name 'sys_ptrace')."""
    pattern = re.compile(r"(?<![A-Za-z0-9_])" + re.escape(word) + r"(?![A-Za-z0-9_])")
    return any(pattern.search(line) for line in lines)


def parse_list(cp):
    """`plugbox list` text output -> {name: (layout, version, {entry points})}.
    The fourth column may be empty (with or without its tab)."""
    plugins = {}
    for line in cp.stdout.splitlines():
        fields = line.split("\t")
        assert 3 <= len(fields) <= 4, f"bad list line {line!r}" + explain(cp)
        name, layout, version = fields[:3]
        eps = fields[3] if len(fields) == 4 else ""
        assert name not in plugins, f"{name} listed twice" + explain(cp)
        plugins[name] = (layout, version, set(filter(None, eps.split(","))))
    return plugins


def assert_reported(cp, plugin, word):
    """Some supervisor line (not the plugin's own output) names both the
    plugin and word (a syscall name, as a whole word)."""
    lines = [line for line in supervisor_lines(cp, plugin) if plugin in line]
    assert names_word(lines, word), \
        f"no supervisor line names both {plugin!r} and {word!r}" + explain(cp)


def assert_killed_for(cp, plugin, syscall):
    """The sandbox stopped the plugin (exit 3) and said so: plugin + syscall."""
    assert cp.returncode == EXIT_SANDBOX, explain(cp)
    assert cp.stdout == "", explain(cp)
    assert_reported(cp, plugin, syscall)


# ---- builds with --enable-sanitizers ------------------------------------------

SANITIZE_CFLAGS = os.environ.get("PB_SANITIZE_CFLAGS", "").split()
SANITIZED = any(flag.startswith("-fsanitize") for flag in SANITIZE_CFLAGS)


def preload_sanitizers(env):
    """env for a program that loads an instrumented libplugbox without being
    linked against the sanitizer runtime (Python with ctypes): ASan must be
    the first library loaded, and the interpreter's own leaks are not ours."""
    env = dict(env)
    if SANITIZED:
        cc = (os.environ.get("PB_CC") or "cc").split()
        runtime = subprocess.run([*cc, "-print-file-name=libasan.so"], capture_output=True,
                                 text=True, check=True).stdout.strip()
        env["LD_PRELOAD"] = runtime
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
    return env


# plugbox under memcheck (make valgrind-check, tests/tools/valgrind-plugbox).
UNDER_VALGRIND = bool(os.environ.get("PB_VALGRIND_PLUGBOX"))

# Memory bounds in the tests are for a plain build; ASan's redzones and its
# quarantine of freed memory (ASAN_OPTIONS quarantine_size_mb, set by make
# check), or memcheck's shadow memory and its queue of freed blocks, make the
# same program hold more.
MEMORY_FACTOR = 3 if SANITIZED or UNDER_VALGRIND else 1


def mapped_at(pid, library):
    """Where `library` starts in pid's address space: the same in a process
    cloned from another, elsewhere (ASLR) in one that exec'd."""
    with open(f"/proc/{pid}/maps") as f:
        return next(int(line.split("-")[0], 16) for line in f if library in line)
