"""Floods and forgeries in what a plugin produces (tests/plugins/flood).

`flooder` floods every stream a worker has to the supervisor: a 16 MiB Log
record of newlines written raw to its channel from a thread after its call
returned, 64 MiB of newlines on stdout, 16 MiB on stderr, a hundred
thousand print() lines, twenty thousand refused host calls (each a note).
Each stream reaches the host metered (1000 lines or 256 KiB a second), with
a "dropped N lines / N bytes" note for the rest, while a sibling plugin
served by the same daemon keeps answering within twice its usual p99 (plus a scheduler slice or two); and
with the daemon's stderr on a pipe nobody reads, the flood costs output,
never calls, and SIGTERM still ends the daemon at once.

`escaper` and `badstart` put terminal escapes (ESC sequences, the 8-bit CSI
U+009B, a right-to-left override) and forged lines into every text of a
plugin's that plugbox shows: output and log lines, the type, message and
traceback of an exception, a start-up error, and `plugbox list`'s fields;
`plugbox call`, `call --socket` and `list` show them escaped, `--json`
exactly.
"""

import errno
import fcntl
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import termios
import time

import pytest

from pbserve import serve, sockdir  # noqa: F401 (fixtures used by name)
from pbtest import EXIT_OK, EXIT_RAISED, EXIT_USAGE, check_on_pace, explain, result_of, scaled
import pbwire
from test_channel import Steady

LINES_PER_SECOND = 1000          # per stream of a worker (runtime/process.h)
DROPPED = re.compile(r"dropped (\d+) lines / (\d+) bytes of (\w[\w ]*) \(more than")

# Control characters a terminal acts on; none may reach it from a plugin.
CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f\x80-\x9f\u202a-\u202e\u2066-\u2069]")

FLOODS = {
    # name: (function, arguments, the stream it floods, seconds to watch after the answer)
    "log_record_16MiB": ("log_bomb", (16 * 1024 * 1024 - 64, 2), "log lines", 2.0),
    "stdout_64MiB": ("stdout_bomb", (64,), "stdout", 0.5),
    "stderr_16MiB": ("stdout_bomb", (16, 2), "stderr", 0.5),
    "print_100k_lines": ("print_lines", (100000,), "stdout", 0.5),
    "denied_host_calls": ("denied_host_calls", (5000,), "notes", 0.5),
}


@pytest.fixture
def flood_plugins(copy_plugins, paths):
    """flooder, escaper, badstart, and a well-behaved `steady` (echo20)."""
    target = copy_plugins(paths.plugins / "flood")
    shutil.copytree(paths.plugins / "runtime" / "echo20", target / "steady",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for entry in target.iterdir():
        os.chmod(entry, 0o755)
    return target


def paced_baseline(daemon, seconds=2.0):
    """The sibling's latencies measured as they are during a flood (a call
    every 2 ms for `seconds`) while flooder burns a CPU without a byte of
    output: a flooding worker takes CPU from a small machine whatever the
    supervisor does, and the comparison is about what the supervisor does
    with the bytes."""
    busy = daemon.conn()
    busy.call(99, "flooder", "spin", seconds + 1.0, timeout=60)
    try:
        with Steady(daemon) as quiet:
            quiet.measure(20)
            quiet.watch(seconds)
            quiet.watched()
        assert busy.recv(timeout=30)["body"] == "result"
    finally:
        busy.close()
    assert not quiet.failures, quiet.failures[:3]
    return quiet.latencies


def check_sibling_on_time(before, steady, after):
    """The sibling answered every call, kept its pace, and its p99 during
    the flood stayed within twice its baseline (pbtest.check_on_pace)."""
    assert not steady.failures, steady.failures[:3]
    # A call that never came back is in neither list: the sibling must have
    # kept the pace it had alone, for at least as long.
    assert len(steady.latencies) >= len(before) // 2, (len(steady.latencies), len(before))
    check_on_pace(before, steady.latencies, after)


def flood(daemon, function, args, timeout=60):
    conn = daemon.conn()
    try:
        conn.call(1, "flooder", function, *args, timeout=timeout)
        answer = conn.recv(timeout=timeout + 10)
    finally:
        conn.close()
    assert answer["body"] == "result", answer
    return answer["value"]


def plugin_lines(text, plugin):
    return [line for line in text.splitlines() if line.startswith(f"[{plugin}] ")]


@pytest.mark.parametrize("name", list(FLOODS))
def test_a_flood_is_metered_and_a_sibling_keeps_its_pace(serve, flood_plugins, name):  # noqa: F811
    function, args, stream, linger = FLOODS[name]
    daemon = serve(flood_plugins, "--timeout", "60", "--eager")
    before = paced_baseline(daemon, 3.0)
    with Steady(daemon) as steady:
        steady.watch(3.0)
        started = time.monotonic()
        flood(daemon, function, args)
        time.sleep(linger)          # the log records come after the answer
        took = time.monotonic() - started
        steady.watched()
    check_sibling_on_time(before, steady, paced_baseline(daemon, 3.0))
    log = daemon.stderr()
    # At most one second's burst and the rate for the time the flood took
    # reached the log, and a note counted the rest.
    if stream == "notes":
        shown = [line for line in log.splitlines() if "denied host call" in line]
    else:
        shown = plugin_lines(log, "flooder")
    assert len(shown) <= LINES_PER_SECOND * (took + 1) + 10, (len(shown), took)
    dropped = [m for m in DROPPED.finditer(log) if m.group(3) == stream]
    assert dropped, log[-2000:]
    assert sum(int(m.group(1)) for m in dropped) > 2000, dropped
    assert len(log) < 8 << 20, len(log)
    assert daemon.proc.poll() is None


LIMIT_FLOODS = {
    # name: (the layers probe's function, arguments, the answer's error, its size field, its bounds)
    "private_memory": ("memory_bomb", ("private", 8192), {"type": "MemoryError", "errno": None},
                       "touched_mib", (512, 1024)),
    "shared_memory": ("memory_bomb", ("shared", 8192), {"type": "OSError", "errno": errno.ENOMEM},
                      "touched_mib", (1024, 2048)),
    "threads": ("threads", (4096,), "can't start new thread", "started", (100, 256)),
}


@pytest.mark.parametrize("name", list(LIMIT_FLOODS))
def test_a_limit_flooded_stops_the_flood_and_a_sibling_keeps_its_pace(serve, flood_plugins, scratch, paths,
                                                                       name):  # noqa: F811
    """Memory written to private pages (@limit memory 1G), to shared pages
    (@limit address-space, 2G here so the test touches no more), and
    threads (@limit processes 256, their stacks in the memory), by
    test_layers' probe: each flood ends at its limit, the worker answers,
    and the sibling served by the same daemon keeps its pace, as for the
    output floods."""
    function, args, error, field, (low, high) = LIMIT_FLOODS[name]
    if not (flood_plugins / "probe").exists():
        shutil.copytree(paths.plugins / "layers" / "probe", flood_plugins / "probe",
                        ignore=shutil.ignore_patterns("__pycache__"))
        os.chmod(flood_plugins / "probe", 0o755)
    policies = scratch / "limit-policies"
    if not policies.exists():
        shutil.copytree(os.environ.get("PLUGBOX_POLICIES") or paths.srcdir.parent / "policies", policies)
        (policies / "probe.policy").write_text("@limit address-space 2G\n@include default\n")
        for f in policies.iterdir():
            os.chmod(f, 0o644)
        os.chmod(policies, 0o755)
    daemon = serve(flood_plugins, "--timeout", "60", "--eager", "--policies", str(policies))
    before = paced_baseline(daemon, 3.0)
    with Steady(daemon) as steady:
        steady.watch(3.0)
        conn = daemon.conn()
        try:
            conn.call(1, "probe", function, *args, timeout=60)
            answer = conn.recv(timeout=70)
        finally:
            conn.close()
        steady.watched()
    check_sibling_on_time(before, steady, paced_baseline(daemon, 3.0))
    assert answer["body"] == "result", answer
    got = answer["value"]
    assert got["error"] == error and low < got[field] <= high, got
    assert daemon.proc.poll() is None


def test_a_wedged_stderr_costs_output_never_calls(plugbox, flood_plugins, sockdir):  # noqa: F811
    # plugbox serve's stderr is a pipe nobody reads (a wedged log collector).
    sock = sockdir / "w.sock"
    r, w = os.pipe()
    proc = subprocess.Popen(
        [plugbox.exe, "serve", "--plugins", str(flood_plugins), "--socket", str(sock), "--eager",
         "--timeout", "60"],
        env=plugbox.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=w,
        start_new_session=True)
    os.close(w)
    try:
        deadline = time.monotonic() + scaled(15)
        while True:     # its stderr cannot say "listening on": connect until it answers
            assert proc.poll() is None and time.monotonic() < deadline, "plugbox serve did not start"
            try:
                pbwire.Conn(sock).close()
                break
            except OSError:
                time.sleep(0.02)

        class Daemon:
            def conn(self, **kw):
                return pbwire.Conn(sock, **kw)
        daemon = Daemon()
        before = paced_baseline(daemon, 3.0)
        with Steady(daemon) as steady:
            steady.watch(3.0)
            # far more than the pipe (64 KiB) and the writer's queue (256 KiB)
            # hold: the meter passes 256 KiB a second of these 1 KB lines
            assert flood(daemon, "print_paced", (3.0, 2000, 1000)) > 3000
            assert flood(daemon, "stdout_bomb", (8,)) == 8
            assert flood(daemon, "denied_host_calls", (2000,)) == 2000
            steady.watched()
        check_sibling_on_time(before, steady, paced_baseline(daemon, 3.0))
        # ...and a plugin's calls are answered as before
        conn = daemon.conn()
        conn.call(7, "steady", "echo", "still", timeout=10)
        assert conn.recv(timeout=10)["value"] == ["steady", "still"]
        conn.close()
        assert proc.poll() is None
        # stderr really was wedged: the pipe is full, the rest waits or was dropped
        waiting = struct.unpack("i", fcntl.ioctl(r, termios.FIONREAD, b"\0\0\0\0"))[0]
        assert waiting >= 60000, waiting
        # SIGTERM ends it at once, stderr wedged or not.
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            status = proc.wait(scaled(10))
        except subprocess.TimeoutExpired:
            pytest.fail("plugbox serve did not end within 10 s of SIGTERM with its stderr wedged")
        took = time.monotonic() - start
        assert status == 0 and took < scaled(3), (status, took)
        # (what it then writes once stderr takes bytes again, the count of
        # what it dropped, is check_output.c's test_sink_full_pipe_never_blocks)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(r)


# ---- terminal escapes -----------------------------------------------------------

def assert_no_controls(text, where):
    m = CONTROLS.search(text)
    assert not m, f"{where}: control character {m.group()!r} at {m.start()}: {text[max(0, m.start() - 80):m.start() + 80]!r}"


def assert_not_forged(text):
    """No line of plugbox's own form comes from the plugin's text."""
    for line in text.splitlines():
        assert not line.startswith("plugbox: plugin 'steady'"), text
        assert not line.startswith("plugbox: forged"), text
        assert not line.startswith("forged\t"), text


def test_escapes_in_output_and_log_lines_are_shown_escaped(plugbox, flood_plugins):
    cp = plugbox.call(flood_plugins, "escaper", "output")
    assert cp.returncode == EXIT_OK and result_of(cp) == "printed", explain(cp)
    assert_no_controls(cp.stderr, "stderr")
    assert_not_forged(cp.stderr)
    for what in ("stdout:", "stderr:", "log:"):
        assert any(what + r"\x1b[2J\x1b]0;owned\x07\u{9b}31m\u{202e}evil" in line
                   for line in cp.stderr.splitlines()), explain(cp)
    assert r"WARNING esc\x1b[1m: " in cp.stderr, explain(cp)


def check_exception_shown(cp):
    assert cp.returncode == EXIT_RAISED, explain(cp)
    assert_no_controls(cp.stderr, "stderr")
    assert_not_forged(cp.stderr)
    # type, message and the traceback's file name, escaped
    assert r'File "evil\x1b[2J\u{9b}.py"' in cp.stderr, explain(cp)
    last = cp.stderr.splitlines()[-1]
    assert last.startswith(r"plugbox: plugin 'escaper' raised escaper.Evil\x1b[31m\u{9b}Type: message:"
                           r"\x1b[2J\x1b]0;owned\x07\u{9b}31m\u{202e}evil\nplugbox: plugin 'steady'"), last


def test_escapes_in_an_exception_are_shown_escaped(plugbox, flood_plugins):
    check_exception_shown(plugbox.call(flood_plugins, "escaper", "throw"))


def test_escapes_reach_call_socket_escaped(plugbox, serve, flood_plugins):  # noqa: F811
    daemon = serve(flood_plugins)
    check_exception_shown(plugbox.run(["call", "--socket", daemon.sock, "escaper", "throw"]))
    cp = plugbox.run(["call", "--socket", daemon.sock, "badstart", "anything"])
    assert cp.returncode == EXIT_USAGE, explain(cp)
    assert_no_controls(cp.stderr, "stderr")
    assert_not_forged(cp.stderr)
    assert r"x\x1b[2J\x1b]0;owned\x07\u{9b}31m\u{202e}\nplugbox: plugin 'steady': forged" in cp.stderr, explain(cp)
    # the daemon's own log is escaped too
    assert_no_controls(daemon.stderr(), "the daemon's log")


def test_escapes_in_a_start_up_error_are_shown_escaped(plugbox, flood_plugins):
    cp = plugbox.call(flood_plugins, "badstart", "anything")
    assert cp.returncode == EXIT_USAGE, explain(cp)
    assert_no_controls(cp.stderr, "stderr")
    assert_not_forged(cp.stderr)
    assert r"x\x1b[2J\x1b]0;owned\x07\u{9b}31m\u{202e}\nplugbox: plugin 'steady': forged" in cp.stderr, explain(cp)


def test_list_fields_cannot_forge_lines_or_columns(plugbox, flood_plugins):
    cp = plugbox.list(flood_plugins)
    assert_no_controls(cp.stdout, "stdout")
    assert_no_controls(cp.stderr, "stderr")
    rows = cp.stdout.splitlines()
    # one line per plugin that starts (badstart cannot), four columns each
    assert [row.split("\t")[0] for row in rows] == ["escaper", "flooder", "steady"], explain(cp)
    assert all(row.count("\t") == 3 for row in rows), explain(cp)
    escaper = rows[0].split("\t")
    assert escaper[2] == r"1.0\tpackage\n\x1b[2Jforged\tpackage\t6.6.6\t\u{9b}31m", explain(cp)
    # --json keeps the exact text
    doc = json.loads(plugbox.list(flood_plugins, as_json=True).stdout)
    versions = {d["name"]: d["version"] for d in doc}
    assert versions["escaper"] == "1.0\tpackage\n\x1b[2Jforged\tpackage\t6.6.6\t\u009b31m"
