"""`plugbox serve` and `plugbox call --socket`: the daemon over a unix socket.

The tests speak the control protocol through pbwire.py (hand-made protobuf)
as a program in any language would, and through `plugbox call --socket`.
They check what a user of the daemon relies on: who may connect, that
answers are right under load from many clients, that one bad or slow client
harms nobody else, and that SIGTERM and SIGKILL leave no call unanswered and
no worker behind.
"""

import ctypes
import json
import os
import random
import re
import shutil
import signal
import socket
import stat
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

import pbwire
from pbserve import serve, sockdir  # noqa: F401 (fixtures used by name)
from pbtest import (EXIT_DIED, EXIT_OK, EXIT_RAISED, EXIT_SANDBOX, MEMORY_FACTOR, assert_one_error_line, explain, result_of, scaled,
                    worker_pids)

PR_SET_CHILD_SUBREAPER = 36
NOBODY = 65534


@pytest.fixture
def plugins(copy_plugins, paths):
    """tools, plus copies of echo20 named e00..e{n-1}: plugins(n) -> dir."""
    def make(n_echo=2):
        target = copy_plugins(paths.plugins / "serve", only=["tools"])
        for i in range(n_echo):
            shutil.copytree(paths.plugins / "runtime" / "echo20", target / f"e{i:02d}",
                            ignore=shutil.ignore_patterns("__pycache__"))
            os.chmod(target / f"e{i:02d}", 0o755)
        return target
    return make


def proc_state(pid):
    """'R', 'S', 'Z'..., or None once the pid is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


@pytest.fixture
def subreaper():
    """Orphaned workers become this process's children, so a worker that
    outlives its daemon is seen (and reaped) here, not hidden under init."""
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    yield
    libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def assert_workers_gone(pids, within=5.0):
    """Every pid ends within `within` seconds; zombies handed to us are reaped."""
    deadline = time.monotonic() + within
    left = set(pids)
    while left and time.monotonic() < deadline:
        for pid in list(left):
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    left.discard(pid)
                    continue
            except ChildProcessError:
                pass                            # not ours: its parent reaps it
            if proc_state(pid) in (None, "Z"):
                left.discard(pid)
        time.sleep(0.05)
    survivors = [(p, proc_state(p)) for p in left]
    for pid in left:                # not to outlive the test
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    assert not survivors, f"workers still running {within} s after their daemon ended: {survivors}"


def wait_for_workers(daemon, n, within=10.0):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        kids = worker_pids(daemon.pid)
        if len(kids) >= n:
            return kids
        time.sleep(0.05)
    pytest.fail(f"expected {n} workers under the daemon, found {worker_pids(daemon.pid)}")


# ---- 1. the socket, and `plugbox call --socket` ---------------------------------

def test_socket_is_private_and_call_socket_matches_local_call(plugbox, serve, plugins):
    pdir = plugins(1)
    d = serve(pdir)
    st = os.lstat(d.sock)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
    assert st.st_uid == os.geteuid()
    assert f"plugbox serve: listening on {d.sock} (2 plugins)" in d.stderr()

    hello = d.conn().hello
    assert hello == {"id": 0, "body": "hello", "protocol_version": 1}

    arg = '{"k":[1,2.5,null,{"$bytes":"AAE="}],"s":"\\u00e9"}'
    remote = plugbox.run(["call", "--socket", d.sock, "tools", "echo", arg])
    local = plugbox.call(pdir, "tools", "echo", arg)
    assert remote.returncode == EXIT_OK, explain(remote)
    assert remote.stdout == local.stdout, explain(remote)
    assert result_of(remote) == json.loads(arg)
    assert result_of(plugbox.run(["call", "--socket", d.sock, "--timeout", "5", "e00", "echo", "-5"])) \
        == ["e00", -5]

    raised = plugbox.run(["call", "--socket", d.sock, "tools", "boom", '"no luck"'])
    assert raised.returncode == EXIT_RAISED, explain(raised)
    assert "plugbox: plugin 'tools' raised ValueError: no luck" in raised.stderr, explain(raised)
    assert "Traceback" in raised.stderr and raised.stdout == "", explain(raised)

    missing = plugbox.run(["call", "--socket", d.sock, "tools", "nosuch"])
    assert_one_error_line(missing, "nosuch")
    assert missing.stderr == plugbox.call(pdir, "tools", "nosuch").stderr

    assert_one_error_line(plugbox.run(["call", "--socket", d.sock, "--plugins", pdir, "tools", "echo", "1"]),
                          "--plugins")
    unreachable = plugbox.run(["call", "--socket", d.sock.parent / "none.sock", "tools", "echo", "1"])
    assert unreachable.returncode == EXIT_DIED, explain(unreachable)
    assert "cannot reach the daemon at" in unreachable.stderr, explain(unreachable)


def test_call_and_list_socket_print_what_local_ones_print(plugbox, serve, plugins, copy_plugins, paths):
    """The same stdout, stderr lines of plugbox's own and exit codes as the
    local commands: a violation, a config error, a list (text and JSON)."""
    pdir = plugins(0)
    copy_plugins(paths.plugins / "hostile", only=["sys_ptrace"])
    copy_plugins(paths.plugins / "features", only=["tomllist"])
    copy_plugins(paths.plugins / "hooks", only=["p3_value"])
    d = serve(pdir)

    def own_lines(cp):
        # The arguments ptrace() was not given are whatever was in the registers.
        return [re.sub(r"ptrace\([^)]*\)", "ptrace(...)", line) for line in cp.stderr.splitlines()
                if not line.startswith("[")]

    remote = plugbox.run(["call", "--socket", d.sock, "sys_ptrace", "attack"])
    local = plugbox.call(pdir, "sys_ptrace", "attack")
    assert remote.returncode == local.returncode == EXIT_SANDBOX, explain(remote)
    assert own_lines(remote) == own_lines(local), (remote.stderr, local.stderr)
    assert "ptrace" in remote.stderr and "rule" in remote.stderr, explain(remote)

    for as_json in (False, True):
        flag = ["--json"] if as_json else []
        remote = plugbox.run(["list", "--socket", d.sock, *flag])
        local = plugbox.run(["list", "--workers", "--plugins", pdir, *flag])   # the daemon's list describes workers
        assert remote.returncode == local.returncode == EXIT_OK, explain(remote)
        if not as_json:
            assert remote.stdout == local.stdout, (remote.stdout, local.stdout)
    # The layers name each worker's own uid and the trees it may read (the
    # daemon's bytecode caches are its own), so they differ in detail.
    listed, local_listed = json.loads(remote.stdout), json.loads(local.stdout)
    for a, b in zip(listed, local_listed):
        assert len(a.pop("layers")) == len(b.pop("layers")), (a, b)
    assert listed == local_listed
    assert [p["name"] for p in listed] == ["p3_value", "sys_ptrace", "tomllist", "tools"]
    assert_one_error_line(plugbox.run(["list", "--socket", d.sock, "--plugins", pdir]), "--socket")
    unreachable = plugbox.run(["list", "--socket", d.sock.parent / "none.sock"])
    assert unreachable.returncode == EXIT_DIED and "cannot reach the daemon" in unreachable.stderr, explain(unreachable)


def test_strings_with_u0000_cross_the_daemon_whole(plugbox, serve, plugins):
    d = serve(plugins(1))
    conn = d.conn()
    conn.call(1, "tools", "echo", "a\0b")
    got = conn.recv()
    assert (got["id"], got["body"], got.get("value")) == (1, "result", "a\0b"), got
    cp = plugbox.run(["call", "--socket", d.sock, "tools", "echo", '["a\\u0000b", "\\u0000"]'])
    assert (cp.returncode, cp.stdout) == (EXIT_OK, '["a\\u0000b","\\u0000"]\n'), explain(cp)


def test_call_socket_needs_a_daemon_of_its_protocol(plugbox, sockdir):
    """A fake daemon that greets with another version, or not at all."""
    path = sockdir / "fake.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(4)
    listener.settimeout(10)

    def serve_once(greeting):
        conn, _ = listener.accept()
        if greeting:
            conn.sendall(greeting)
            conn.recv(1 << 16)
        conn.close()

    for greeting, expected in ((pbwire.hello_frame(2), "speaks protocol version 2"),
                               (b"", "closed the connection")):
        t = threading.Thread(target=serve_once, args=(greeting,), daemon=True)
        t.start()
        cp = plugbox.run(["call", "--socket", path, "--timeout", "1", "tools", "echo", "1"], timeout=15)
        t.join(10)
        assert cp.returncode == EXIT_DIED, explain(cp)
        assert expected in cp.stderr and cp.stdout == "", explain(cp)
    listener.close()


def test_call_socket_sends_its_call_without_waiting_for_the_hello(plugbox, sockdir):
    """One round trip less per `plugbox call --socket`: a fake daemon that
    greets only once the call has arrived still gets it."""
    path = sockdir / "late.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(4)
    listener.settimeout(10)
    got = []

    def frames(data):
        while len(data) >= 4 and len(data) >= 4 + struct.unpack("<I", data[:4])[0]:
            n = struct.unpack("<I", data[:4])[0]
            yield pbwire.decode_envelope(data[4:4 + n])
            data = data[4 + n:]

    def serve_once():
        conn, _ = listener.accept()
        conn.settimeout(5)
        data = b""
        try:
            # Its Hello asking for version 2 may come first; the call follows.
            while not any(env["body"] == "call" for env in frames(data)):
                chunk = conn.recv(1 << 16)
                if not chunk:
                    break
                data += chunk
        except socket.timeout:
            pass
        got.append(data)
        calls = [env for env in frames(data) if env["body"] == "call"]
        if calls:
            conn.sendall(pbwire.hello_frame(1) + pbwire.result_frame(calls[0]["id"], "early"))
        conn.close()

    t = threading.Thread(target=serve_once, daemon=True)
    t.start()
    cp = plugbox.run(["call", "--socket", path, "--timeout", "2", "tools", "echo", "1"], timeout=30)
    t.join(10)
    listener.close()
    assert got and got[0], "the call was not sent before the hello"
    assert (cp.returncode, cp.stdout) == (EXIT_OK, '"early"\n'), explain(cp)


# ---- 2. one daemon per path; a stale socket is reused ---------------------------

def test_second_daemon_refused_and_stale_socket_reused(plugbox, serve, plugins, sockdir):
    pdir = plugins(1)
    first = serve(pdir)
    second = plugbox.run(["serve", "--plugins", pdir, "--socket", first.sock], timeout=15)
    assert_one_error_line(second, str(first.sock), "another daemon is listening there")
    assert result_of(plugbox.run(["call", "--socket", first.sock, "e00", "echo", "1"])) == ["e00", 1]

    not_socket = sockdir / "plain"
    not_socket.write_text("keep me")
    refused = plugbox.run(["serve", "--plugins", pdir, "--socket", not_socket], timeout=15)
    assert_one_error_line(refused, str(not_socket), "not a socket")
    assert not_socket.read_text() == "keep me"

    # SIGKILL leaves the socket file behind with nobody listening.
    first.stop(signal.SIGKILL)
    assert first.sock.exists()
    third = serve(pdir, sock=first.sock)
    assert result_of(plugbox.run(["call", "--socket", third.sock, "e00", "echo", "2"])) == ["e00", 2]
    status, took = third.stop()
    assert status == 0 and took < 5, (status, took, third.stderr())
    assert not third.sock.exists(), "the daemon left its socket behind"


# ---- 3. many clients, many plugins ----------------------------------------------

def test_many_clients_pipelining_over_many_plugins(serve, plugins):
    n_plugins, per_plugin, n_clients, window = 20, 500, 4, 32
    d = serve(plugins(n_plugins), "--eager")
    names = [f"e{i:02d}" for i in range(n_plugins)]
    failures = []

    def client(k):
        conn = d.conn()
        todo = [(names[i % n_plugins], f"c{k}-{i}") for i in range(k, n_plugins * per_plugin, n_clients)]
        expected, sent, done = {}, 0, 0
        try:
            while done < len(todo):
                while sent < len(todo) and sent - done < window:
                    name, x = todo[sent]
                    sent += 1
                    expected[sent] = [name, x]
                    conn.call(sent, name, "echo", x)
                reply = conn.recv(timeout=30)
                want = expected.pop(reply["id"], None)
                if reply["body"] != "result" or reply["value"] != want:
                    failures.append((k, reply, want))
                    return
                done += 1
            assert not expected
        except Exception as e:          # reported below, from the main thread
            failures.append((k, repr(e)))
        finally:
            conn.close()

    start = time.monotonic()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(n_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    elapsed = time.monotonic() - start
    assert not any(t.is_alive() for t in threads), "a client is still waiting"
    assert not failures, failures[:5]
    assert elapsed < 30, f"{n_plugins * per_plugin} calls took {elapsed:.1f} s"


# ---- 4. peer credentials ----------------------------------------------------------

NOBODY_CLIENT = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
try:
    s.connect(sys.argv[1])
except PermissionError:
    print("EACCES"); sys.exit()
try:
    data = s.recv(4096)
except ConnectionResetError:
    data = b""
print("closed" if data == b"" else "hello")
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to connect as another uid")
def test_only_the_daemons_user_may_connect(serve, plugins):
    d = serve(plugins(0))

    def as_nobody():
        cp = subprocess.run(["/usr/bin/python3", "-c", NOBODY_CLIENT, str(d.sock)], user=NOBODY,
                            group=NOBODY, extra_groups=[], capture_output=True, text=True, timeout=15)
        assert cp.returncode == 0, cp.stderr
        return cp.stdout.strip()

    assert as_nobody() == "EACCES"          # mode 0600: the kernel refuses
    os.chmod(d.sock, 0o666)                 # the operator loosened it: the daemon still refuses
    assert as_nobody() == "closed"
    deadline = time.monotonic() + 5
    while "refused a client" not in d.stderr() and time.monotonic() < deadline:
        time.sleep(0.02)
    lines = [line for line in d.stderr().splitlines() if "refused a client" in line]
    assert len(lines) == 1 and lines[0].startswith("plugbox serve: refused a client: pid "), d.stderr()
    assert lines[0].endswith(f"uid {NOBODY} is not the daemon's user"), lines
    assert d.conn().hello["protocol_version"] == 1   # root, the daemon's user, still gets in


# ---- 5. slow and vanished clients ----------------------------------------------------

def test_clients_that_never_read_or_vanish_do_not_hold_up_others(serve, plugins):
    d = serve(plugins(1))
    warm = d.conn()
    warm.call(1, "tools", "echo", 0)
    warm.call(2, "e00", "echo", 0)
    assert {warm.recv()["id"], warm.recv()["id"]} == {1, 2}
    rss_before = d.rss_kib()

    # 600 answers of 100 kB (60 MB) that nobody reads.
    hog = d.conn()
    calls = b"".join(pbwire.call_frame(i, "tools", "big", [100_000]) for i in range(1, 601))
    hog.send_unread(calls, 5)
    ghost = d.conn()
    ghost.call(1, "tools", "sleep", 0.3, "ghost")
    ghost.close()

    other = d.conn()
    start = time.monotonic()
    for i in range(1, 101):
        other.call(i, "e00", "echo", i)
        assert other.recv(timeout=5) == {"id": i, "body": "result", "value": ["e00", i]}
    other.call(101, "tools", "echo", "after the hog")
    assert other.recv(timeout=10)["value"] == "after the hog"
    elapsed = time.monotonic() - start
    assert elapsed < 5, f"the third client waited {elapsed:.1f} s"

    time.sleep(0.3)
    grown = d.rss_kib() - rss_before
    # Reading stops at 8 MiB of queued answers (+ 64 calls in flight);
    # without that the daemon would hold all 60 MB.
    assert grown < 40 * 1024 * MEMORY_FACTOR, f"the daemon grew by {grown} KiB for a client that does not read"
    hog.close()
    other.call(102, "tools", "echo", "still here")
    assert other.recv(timeout=10)["value"] == "still here"


# ---- 6. garbage ------------------------------------------------------------------------

def test_garbage_on_the_control_socket_harms_only_its_sender(serve, plugins):
    d = serve(plugins(1))
    bystander = d.conn()
    rng = random.Random(20240611)

    def fatal(data):
        conn = d.conn()
        conn.send_raw(data)
        reply = conn.recv(timeout=5)
        assert reply["id"] == 0 and reply["body"] == "error" and reply["kind"] == "bad_request", reply
        assert conn.closed_by_peer(5), "the daemon kept talking after a protocol error"
        return reply["message"]

    # Only broken framing ends a connection.
    assert "larger than the limit" in fatal(b"\xff\xff\xff\xff" + b"x" * 100)        # 4 GiB

    # Random bytes, header included: errors, then a close once the client has.
    for _ in range(5):
        conn = d.conn()
        conn.send_raw(rng.randbytes(rng.randrange(1, 3000)))
        conn.sock.shutdown(socket.SHUT_WR)
        try:
            while True:
                reply = conn.recv(timeout=5)
                assert reply["body"] == "error" and reply["kind"] == "bad_request", reply
        except pbwire.Closed:
            pass

    # Bad calls are answered and the conversation goes on.
    conn = d.conn()
    conn.send_raw(pbwire.frame(rng.randbytes(1000)))
    reply = conn.recv()
    assert reply["body"] == "error" and reply["kind"] == "bad_request", reply
    assert "not a valid plugbox Envelope" in reply["message"], reply
    conn.send_raw(pbwire.result_frame(3, "surprise"))
    assert conn.recv() == {"id": 3, "body": "error", "kind_number": 9, "kind": "bad_request", "type": "",
                           "message": "a client does not send a result (message 3)", "traceback": ""}
    conn.call(0, "tools", "echo", 1)
    assert conn.recv() == {"id": 0, "body": "error", "kind_number": 9, "kind": "bad_request", "type": "",
                           "message": "a call needs a non-zero id", "traceback": ""}
    conn.call(5, "", "echo", 1)
    assert conn.recv()["id"] == 5
    deep = 1
    for _ in range(63):
        deep = [deep]                    # 64 levels: decodes, but the library refuses it
    conn.call(6, "tools", "echo", deep)
    reply = conn.recv()
    assert (reply["id"], reply["kind"]) == (6, "bad_request") and "nested" in reply["message"], reply
    conn.call(7, "tools", "sleep", 0.3, "first")
    conn.call(7, "tools", "echo", "second")
    reply = conn.recv()
    assert (reply["id"], reply["kind"]) == (7, "bad_request") and "in flight" in reply["message"], reply
    assert conn.recv() == {"id": 7, "body": "result", "value": "first"}
    conn.call(8, "tools", "kw", 1, kwargs={"b": 2})
    assert conn.recv() == {"id": 8, "body": "result", "value": [1, 2]}

    bystander.call(1, "e00", "echo", "fine")
    assert bystander.recv() == {"id": 1, "body": "result", "value": ["e00", "fine"]}
    assert d.proc.poll() is None


def _call_with_fields(id, plugin, function, args, extra_call=b"", extra_env=b"", value_hook=None):
    """A Call envelope built by hand, with extra bytes inside the Call and
    the Envelope (unknown fields, or a broken value)."""
    payload = pbwire.call_payload(plugin, function, args) + extra_call
    return pbwire.frame(pbwire._var_field(1, id) + pbwire._len_field(3, payload) + extra_env)


def test_a_bad_message_fails_only_itself_while_calls_are_in_flight(serve, plugins):
    """An unset Value, a NUL in a name, a body a client does not send, an
    unknown plugin: each is answered under its own id, naming what was
    wrong, and the calls in flight on the same connection end normally."""
    d = serve(plugins(1))
    conn = d.conn()
    for i in range(1, 4):
        conn.call(i, "tools", "sleep", 0.3, f"slow{i}")
    # A Value with no kind, inside the call's arguments.
    unset = pbwire.frame(pbwire._var_field(1, 10) + pbwire._len_field(
        3, pbwire._len_field(1, b"echo") + pbwire._len_field(2, b"") + pbwire._len_field(4, b"tools")))
    conn.send_raw(unset)
    # A NUL inside the function's name.
    conn.send_raw(pbwire.call_frame(11, "tools", "ec\0ho", [1]))
    # A body only a worker sends.
    conn.send_raw(pbwire.frame(pbwire._var_field(1, 12) + pbwire._len_field(9, b"")))
    # A plugin that does not exist.
    conn.call(13, "nosuch", "echo", 1)
    # A version 2 request on a version 1 connection.
    conn.send_raw(pbwire.list_frame(14))
    # A body field this daemon does not know at all (a later version's).
    conn.send_raw(pbwire.frame(pbwire._var_field(1, 15) + pbwire._len_field(99, b"")))
    conn.call(16, "tools", "echo", "after")
    replies = {}
    for _ in range(10):
        r = conn.recv(timeout=15)
        replies[r["id"]] = r
    assert [replies[i]["value"] for i in (1, 2, 3)] == ["slow1", "slow2", "slow3"], replies
    assert replies[16]["value"] == "after"
    want = {10: ("bad_request", "value kind not set"),
            11: ("bad_request", "NUL byte in plugbox.Call.function"),
            12: ("bad_request", "a client does not send a shutdown"),
            13: ("not_found", "no plugin 'nosuch'"),
            14: ("bad_request", "a list needs protocol version 2"),
            15: ("bad_request", "unknown Envelope field 99")}
    for id, (kind, text) in want.items():
        assert replies[id]["body"] == "error" and replies[id]["kind"] == kind, replies[id]
        assert text in replies[id]["message"], replies[id]
    conn.call(17, "tools", "echo", "still open")
    assert conn.recv() == {"id": 17, "body": "result", "value": "still open"}
    assert not conn.closed_by_peer(0.2)


def test_unknown_fields_are_skipped_as_protobuf_expects(serve, plugins):
    d = serve(plugins(0))
    conn = d.conn()
    extra = pbwire.unknown_fields()
    # In the Envelope, in the Call, and inside a Value of the arguments.
    value = pbwire.encode_value("v") + extra
    payload = (pbwire._len_field(1, b"echo") + pbwire._len_field(2, value) + pbwire._len_field(4, b"tools")
               + extra)
    conn.send_raw(pbwire.frame(pbwire._var_field(1, 1) + pbwire._len_field(3, payload) + extra))
    assert conn.recv() == {"id": 1, "body": "result", "value": "v"}
    # Bounded: a frame of a million unknown fields is refused like a
    # million sub-messages, and the connection goes on.
    many = pbwire._var_field(1, 2) + pbwire._len_field(3, payload) + pbwire._var_field(1000, 1) * 1_100_000
    conn.send_raw(pbwire.frame(many))
    reply = conn.recv(timeout=20)
    assert (reply["id"], reply["kind"]) == (2, "bad_request") and "more than 1048576" in reply["message"], reply
    # Groups (wire types 3 and 4) cannot be skipped by protobuf-c: named.
    conn.send_raw(pbwire.frame(pbwire._var_field(1, 3) + pbwire._len_field(3, payload) + pbwire._key(1000, 3)))
    reply = conn.recv()
    assert reply["id"] == 3 and "wire type 3" in reply["message"], reply
    conn.call(4, "tools", "echo", "ok")
    assert conn.recv() == {"id": 4, "body": "result", "value": "ok"}


def test_protocol_version_2_is_asked_for_and_version_1_stays(serve, plugins):
    d = serve(plugins(0))
    v1 = d.conn()
    # The first Hello is version 1's, with no field a version 1 client lacks.
    assert v1.hello == {"id": 0, "body": "hello", "protocol_version": 1}
    v1.call(1, "tools", "boom", "no")
    reply = v1.recv()
    assert reply["kind"] == "exception" and set(reply) == {"id", "body", "kind", "kind_number", "type", "message",
                                                           "traceback"}, reply
    v2 = d.conn()
    assert v2.upgrade(2) == {"id": 0, "body": "hello", "protocol_version": 2, "max_protocol_version": 2}
    v2.call(1, "tools", "boom", "no")
    reply = v2.recv()
    assert (reply["kind"], reply["type"], reply["plugin"]) == ("exception", "ValueError", "tools"), reply
    assert "boom" in reply["traceback"]
    # A later client asks for more than there is, and gets what there is.
    later = d.conn()
    assert later.upgrade(9)["protocol_version"] == 2
    # A Hello after the first message is refused, and nothing else changes.
    v1.send_raw(pbwire.hello_frame(2))
    reply = v1.recv()
    assert reply["kind"] == "bad_request" and "first message" in reply["message"], reply
    v1.send_raw(pbwire.list_frame(2))
    assert "needs protocol version 2" in v1.recv()["message"]


def test_list_and_describe(serve, plugins, copy_plugins, paths):
    pdir = plugins(1)
    copy_plugins(paths.plugins / "features", only=["tomllist"])
    copy_plugins(paths.plugins / "hooks", only=["p3_value"])
    d = serve(pdir)
    conn = d.conn()
    conn.upgrade(2)
    conn.send_raw(pbwire.list_frame(1))
    reply = conn.recv()
    names = sorted(os.listdir(pdir))
    assert reply["body"] == "plugins" and reply["id"] == 1, reply
    assert [p["name"] for p in reply["plugins"]] == names == ["e00", "p3_value", "tomllist", "tools"]
    assert {p["state"] for p in reply["plugins"]} == {"stopped"}, "List must start no worker"
    assert worker_pids(d.pid) == []
    conn.send_raw(pbwire.describe_frame(2, "tomllist"))
    conn.send_raw(pbwire.describe_frame(3, "p3_value"))
    got = {}
    for _ in range(2):
        reply = conn.recv(timeout=20)
        assert reply["body"] == "plugin_info", reply
        got[reply["id"]] = reply["info"]
    info = got[2]
    assert (info["name"], info["layout"], info["version"]) == ("tomllist", "package", "3.1.4"), info
    assert info["state"] in ("ready", "busy") and info["exports"] == ["square", "version_info"], info
    assert info["policy_file"] == str(Path(os.environ["PLUGBOX_POLICIES"]) / "default.policy"), info
    assert info["layers"] and info["sys_path"], info
    info = got[3]
    assert (info["layout"], info["version"]) == ("path", "1.0"), info
    assert sorted((ep["group"], ep["name"], ep["value"]) for ep in info["entry_points"]) == [
        ("typeA", "run", "p3_value:run"), ("typeA", "zrun", "p3_value:second")], info
    conn.send_raw(pbwire.list_frame(4))
    states = {p["name"]: p["state"] for p in conn.recv()["plugins"]}
    assert states["tomllist"] == "ready" and states["e00"] == "stopped", states
    conn.send_raw(pbwire.describe_frame(5, "nosuch"))
    reply = conn.recv()
    assert (reply["id"], reply["kind"]) == (5, "not_found") and "nosuch" in reply["message"], reply
    conn.send_raw(pbwire.describe_frame(6, ""))
    reply = conn.recv()
    assert (reply["id"], reply["kind"]) == (6, "bad_request") and "names no plugin" in reply["message"], reply


def test_violation_fields_are_structured(serve, plugins, copy_plugins, paths):
    pdir = plugins(0)
    copy_plugins(paths.plugins / "hostile", only=["sys_ptrace"])
    d = serve(pdir)
    conn = d.conn()
    conn.upgrade(2)
    conn.call(1, "sys_ptrace", "attack")
    reply = conn.recv(timeout=30)
    assert reply["kind"] == "violation", reply
    assert reply["plugin"] == "sys_ptrace" and reply["syscall"] == "ptrace", reply
    args = reply["syscall_args"]
    assert len(args) == 6 and args[0] == 0x4206, reply          # PTRACE_SEIZE, as the plugin made it
    assert reply["policy_file"].endswith(".policy") and reply["policy_line"] > 0, reply
    line = open(reply["policy_file"]).read().splitlines()[reply["policy_line"] - 1]
    assert "ptrace" in line or "@attack" in line or "kill" in line, (line, reply)
    assert reply["rule"] and reply["rule"] in reply["message"], reply
    # Version 1 gets the same error without the fields it does not know.
    v1 = d.conn()
    v1.call(1, "sys_ptrace", "attack")
    reply = v1.recv(timeout=30)
    assert reply["kind"] == "violation" and "syscall" not in reply and "ptrace" in reply["message"], reply


def test_a_connection_that_ends_inside_a_frame_is_told(serve, plugins):
    d = serve(plugins(0))
    conn = d.conn()
    conn.send_raw(pbwire.call_frame(1, "tools", "echo", [1])[:-3])
    conn.sock.shutdown(socket.SHUT_WR)
    reply = conn.recv(timeout=5)
    assert (reply["id"], reply["kind"]) == (0, "bad_request") and "inside a frame" in reply["message"], reply
    assert conn.closed_by_peer(5)
    # A half-close between frames is fine: every call asked is answered.
    conn = d.conn()
    for i in range(1, 4):
        conn.call(i, "tools", "sleep", 0.05 * i, i)
    conn.sock.shutdown(socket.SHUT_WR)
    assert sorted(conn.recv(timeout=5)["value"] for _ in range(3)) == [1, 2, 3]
    assert conn.closed_by_peer(5)


# ---- 7. SIGTERM under load -------------------------------------------------------------

def test_sigterm_answers_every_call_and_ends_every_worker(serve, plugins, subreaper):
    grace = 1.0
    d = serve(plugins(3), "--grace", grace)
    conns, sent = [], []
    for k in range(3):
        conn = d.conn()
        ids = []
        # Past 64 calls in flight the rest wait unread in the socket: they
        # are answered too.
        for i in range(1, 101):
            if i % 4 == 0:
                conn.call(i, "tools", "sleep", 0.5, f"{k}-{i}")
            else:
                conn.call(i, f"e{i % 3:02d}", "echo", f"{k}-{i}")
            ids.append(i)
        conns.append(conn)
        sent.append(ids)
    first = conns[0].recv(timeout=10)          # calls are running
    workers = wait_for_workers(d, 4)
    status, took = d.stop(signal.SIGTERM, timeout=grace + 10)
    assert status == 0, d.stderr()
    assert took < grace + 3, f"the daemon took {took:.1f} s to stop"
    assert "SIGTERM: stopping" in d.stderr()
    assert not d.sock.exists()

    for k, conn in enumerate(conns):
        replies = [first] if k == 0 else []
        try:
            while True:
                replies.append(conn.recv(timeout=5))
        except pbwire.Closed:
            pass
        ids = [r["id"] for r in replies]
        assert sorted(ids) == sent[k], f"client {k}: answers {sorted(ids)}"
        for r in replies:
            tag = f"{k}-{r['id']}"
            if r["body"] != "result":
                assert r["kind"] == "unavailable", r
            elif r["id"] % 4 == 0:
                assert r["value"] == tag, r
            else:
                assert r["value"] == [f"e{r['id'] % 3:02d}", tag], r
    assert_workers_gone(workers)


def test_idle_workers_stop(serve, plugins):
    d = serve(plugins(1), "--idle-stop", "0.3")
    conn = d.conn()
    conn.call(1, "e00", "echo", 1)
    assert conn.recv()["value"] == ["e00", 1]
    assert len(worker_pids(d.pid)) == 1
    deadline = time.monotonic() + 5
    while worker_pids(d.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert worker_pids(d.pid) == [], "an idle worker outlived --idle-stop"
    conn.call(2, "e00", "echo", 2)             # and starts again when needed
    assert conn.recv()["value"] == ["e00", 2]


# ---- 8. SIGKILL -----------------------------------------------------------------------------

def test_a_killed_daemon_leaves_no_worker(serve, plugins, subreaper):
    d = serve(plugins(3), "--eager")
    workers = wait_for_workers(d, 4)
    conn = d.conn()
    conn.call(1, "tools", "sleep", 30)         # one worker busy, the others idle
    time.sleep(0.2)
    d.stop(signal.SIGKILL)
    assert_workers_gone(workers)


def test_eager_imports_the_plugins(serve, copy_plugins, paths):
    """serve --eager starts every worker and has it import its plugin:
    slowimport sleeps 3 s at import, and a client's first call after that
    does not wait for it, where a daemon without --eager makes the first
    call pay (measured in this test)."""
    plugins = copy_plugins(paths.features, only=["slowimport"])

    def first_call(d):
        conn = d.conn()
        try:
            start = time.monotonic()
            conn.call(1, "slowimport", "ping")
            reply = conn.recv(timeout=scaled(60))
            assert reply["body"] == "result" and reply["value"] == "pong", reply
            return time.monotonic() - start
        finally:
            conn.close()

    cold = serve(plugins, "--timeout", "60")
    cold_seconds = first_call(cold)
    cold.stop()
    assert cold_seconds >= 3

    eager = serve(plugins, "--eager", "--timeout", "60")
    deadline = time.monotonic() + scaled(30)
    while "[slowimport] importing" not in eager.stderr() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "[slowimport] importing" in eager.stderr()     # before any client asked
    time.sleep(3.5)                                        # the import's own sleep, and a little
    assert first_call(eager) < cold_seconds / 3


# ---- 9. operations: socket activation, metrics, the JSON log ----------------------------

def test_socket_activation_takes_the_socket_systemd_passes(plugbox, sockdir, plugins, scratch):
    """LISTEN_FDS / LISTEN_PID as systemd sets them (the pid is the daemon's
    own: a shell sets it and execs), the socket on descriptor 3."""
    pdir = plugins(1)
    path = sockdir / "activated.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(8)
    log = open(scratch / "activated.log", "w")
    env = dict(plugbox.env, PB_EXE=str(plugbox.exe), PB_PLUGINS=str(pdir))
    env.pop("LISTEN_FDS", None)
    proc = subprocess.Popen(
        ["/bin/sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$PB_EXE" serve --plugins "$PB_PLUGINS"'],
        env=env, pass_fds=(3,), preexec_fn=lambda: os.dup2(listener.fileno(), 3), stdin=subprocess.DEVNULL,
        stdout=log, stderr=log, start_new_session=True)
    inode = os.fstat(listener.fileno()).st_ino
    listener.close()                          # the daemon's copy is the only one now
    try:
        deadline = time.monotonic() + 15
        while "listening on" not in (scratch / "activated.log").read_text():
            assert proc.poll() is None and time.monotonic() < deadline, (scratch / "activated.log").read_text()
            time.sleep(0.02)
        assert "from systemd" in (scratch / "activated.log").read_text()
        conn = pbwire.Conn(path)
        assert conn.hello["protocol_version"] == 1
        conn.call(1, "e00", "echo", "activated")
        assert conn.recv(timeout=20) == {"id": 1, "body": "result", "value": ["e00", "activated"]}
        # The workers do not inherit LISTEN_* (nor descriptor 3).
        pids = worker_pids(proc.pid)
        assert pids
        for pid in pids:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
            assert b"LISTEN_" not in environ, environ
            fds = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
            assert f"socket:[{inode}]" not in fds, fds
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        # systemd's socket file is systemd's: left where it was.
        assert path.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    # Not for this process (another pid), or not a listening socket: said.
    for fd_setup, pid, expected in (('', "1", "needs --socket"), ('exec 3</dev/null;', "$$", "not a listening unix")):
        cp = subprocess.run(["/bin/sh", "-c", f'{fd_setup} LISTEN_PID={pid} LISTEN_FDS=1 exec "$PB_EXE" serve '
                             f'--plugins "$PB_PLUGINS"'], env=env, capture_output=True, text=True, timeout=20)
        assert cp.returncode == 2 and expected in cp.stderr, (cp.returncode, cp.stderr)


def parse_prometheus(text):
    """{(name, frozenset(labels.items())): value}, checking the format as
    a scraper would: HELP and TYPE before each family's samples, which
    stay together."""
    samples, typed, seen_families, current = {}, {}, [], None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert name not in typed, f"family {name} given twice"
            typed[name] = kind
            current = name
            seen_families.append(name)
            continue
        m = re.fullmatch(r'([a-z_]+)(?:\{(.*)\})? (\S+)', line)
        assert m, f"not a sample line: {line!r}"
        name, labels, value = m.group(1), m.group(2) or "", float(m.group(3))
        base = re.sub(r"_(bucket|sum|count)$", "", name) if typed.get(current) == "histogram" else name
        assert base == current, f"{name} outside its family ({current})"
        pairs = dict(re.findall(r'([a-z_]+)="([^"]*)"', labels))
        samples[(name, frozenset(pairs.items()))] = value
    return samples


def test_metrics_count_the_calls_made(plugbox, serve, plugins, copy_plugins, paths, subreaper):
    pdir = plugins(1)
    copy_plugins(paths.plugins / "hostile", only=["sys_ptrace"])
    metrics = pdir.parent / "metrics.sock"
    d = serve(pdir, "--metrics", metrics)
    st = os.lstat(metrics)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    conn = d.conn()
    for i in range(1, 8):
        conn.call(i, "tools", "echo", i)
    for i in range(8, 11):
        conn.call(i, "tools", "boom", "no")
    conn.call(11, "tools", "sleep", 0.3, "slow")
    conn.call(12, "sys_ptrace", "attack")
    conn.call(13, "nosuch", "echo", 1)              # no plugin: no series of its own
    conn.send_raw(pbwire.result_frame(14, 1))      # a client error
    answers = {}
    for _ in range(14):
        r = conn.recv(timeout=30)
        answers[r["id"]] = r
    assert answers[12]["kind"] == "violation", answers[12]
    stats = plugbox.run(["stats", "--socket", metrics])
    assert stats.returncode == EXIT_OK, explain(stats)
    m = parse_prometheus(stats.stdout)

    def get(name, **labels):
        return m[(name, frozenset(labels.items()))]
    assert get("plugbox_calls_total", plugin="tools", outcome="ok") == 8
    assert get("plugbox_calls_total", plugin="tools", outcome="exception") == 3
    assert get("plugbox_calls_total", plugin="sys_ptrace", outcome="violation") == 1
    assert get("plugbox_calls_total", plugin="e00", outcome="ok") == 0
    assert not any("nosuch" in str(k) for k in m), "a name that is no plugin got a series"
    assert get("plugbox_call_duration_seconds_count", plugin="tools") == 11
    assert get("plugbox_call_duration_seconds_bucket", plugin="tools", le="+Inf") == 11
    # The sleep took 0.3 s: not under 0.25, and the sum holds it.
    assert get("plugbox_call_duration_seconds_bucket", plugin="tools", le="0.25") <= 10
    assert get("plugbox_call_duration_seconds_sum", plugin="tools") >= 0.3
    buckets = [v for (n, l), v in m.items() if n == "plugbox_call_duration_seconds_bucket" and ("plugin", "tools") in l]
    assert buckets == sorted(buckets), "buckets must be cumulative"
    assert get("plugbox_calls_in_flight", plugin="tools") == 0
    assert get("plugbox_worker_starts_total", plugin="tools") == 1
    assert get("plugbox_worker_starts_total", plugin="sys_ptrace") == 1
    assert get("plugbox_violations_total", plugin="sys_ptrace") == 1
    assert get("plugbox_worker_crashes_total", plugin="sys_ptrace") == 1
    assert get("plugbox_violations_total", plugin="tools") == 0
    assert get("plugbox_worker_cpu_seconds_total", plugin="tools") > 0
    assert get("plugbox_worker_peak_rss_bytes", plugin="tools") > 1 << 20
    assert get("plugbox_worker_peak_rss_bytes", plugin="sys_ptrace") > 1 << 20   # from its rusage
    assert get("plugbox_client_errors_total") >= 1
    assert get("plugbox_clients") == 1
    # A call in flight is counted as such; a restart after the crash too.
    conn.call(20, "tools", "sleep", 1.0, "x")
    conn.call(21, "sys_ptrace", "attack")
    time.sleep(0.3)
    m = parse_prometheus(plugbox.run(["stats", "--socket", metrics]).stdout)
    assert get("plugbox_calls_in_flight", plugin="tools") == 1
    conn.recv(timeout=30), conn.recv(timeout=30)
    m = parse_prometheus(plugbox.run(["stats", "--socket", metrics]).stdout)
    assert get("plugbox_worker_restarts_total", plugin="sys_ptrace") == 1
    assert get("plugbox_violations_total", plugin="sys_ptrace") == 2
    # Only the daemon's user may read them; a missing socket exits 4.
    gone = plugbox.run(["stats", "--socket", pdir.parent / "none.sock"])
    assert gone.returncode == EXIT_DIED and "cannot reach" in gone.stderr, explain(gone)
    status, _ = d.stop()
    assert status == 0 and not metrics.exists()


def test_json_log_lines(serve, plugins, copy_plugins, paths):
    pdir = plugins(0)
    copy_plugins(paths.plugins / "hostile", only=["sys_ptrace"])
    d = serve(pdir, "--log-format", "json", "--idle-stop", "1")
    conn = d.conn()
    conn.call(1, "tools", "echo", "x")
    conn.call(2, "sys_ptrace", "attack")
    conn.send_raw(pbwire.result_frame(3, 1))
    got = {r["id"]: r for r in (conn.recv(timeout=30) for _ in range(3))}
    assert got[2]["kind"] == "violation"
    time.sleep(2.5)                                 # tools' worker stops, idle
    d.stop()
    records = []
    for line in d.stderr().splitlines():
        rec = json.loads(line)                      # every line is one JSON object
        assert isinstance(rec, dict) and isinstance(rec["time"], float) and rec["event"], line
        records.append(rec)
    events = [(r["event"], r.get("plugin")) for r in records]
    assert ("daemon", None) in events and any("listening on" in r.get("message", "") for r in records)
    assert ("spawn", "tools") in events and ("spawn", "sys_ptrace") in events
    assert ("exit", "tools") in events, events
    violation = next(r for r in records if r["event"] == "violation")
    assert violation["plugin"] == "sys_ptrace" and violation["syscall"] == "ptrace", violation
    assert violation["policy_file"].endswith(".policy") and violation["policy_line"] > 0, violation
    assert violation["syscall_args"][0] == 0x4206 and violation["pid"] > 0, violation
    assert any(r["event"] == "output" and r["plugin"] == "sys_ptrace" and r["stream"] == "stdout"
               and "about to call ptrace" in r["message"] for r in records), records
    client = next(r for r in records if r["event"] == "client_protocol_error")
    assert "does not send a result" in client["message"] and client["client_pid"] == os.getpid(), client


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="no systemd-analyze on this machine")
def test_shipped_units_verify(plugbox, paths, scratch):
    """systemd-analyze verify finds nothing wrong in plugbox.socket and
    plugbox.service (made from its .in with the built plugbox), beyond the
    man page, which is not installed here."""
    top = paths.srcdir.parent
    units = scratch / "units"
    units.mkdir()
    shutil.copy(top / "systemd" / "plugbox.socket", units)
    # the built plugbox itself, also under valgrind-check (whose PLUGBOX is a wrapper)
    exe = Path(os.environ.get("PB_VALGRIND_PLUGBOX") or plugbox.exe)
    text = (top / "systemd" / "plugbox.service.in").read_text().replace("@bindir@", str(exe.parent))
    (units / "plugbox.service").write_text(text)
    assert "--socket /run/plugbox/plugbox.sock" in text
    socket_unit = (units / "plugbox.socket").read_text()
    assert "ListenStream=/run/plugbox/plugbox.sock" in socket_unit and "SocketMode=0600" in socket_unit
    cp = subprocess.run(["systemd-analyze", "verify", "--man=no", str(units / "plugbox.socket"),
                         str(units / "plugbox.service")], capture_output=True, text=True, timeout=60, cwd=units)
    problems = [line for line in (cp.stdout + cp.stderr).splitlines() if line.strip()]
    assert cp.returncode == 0 and problems == [], problems
