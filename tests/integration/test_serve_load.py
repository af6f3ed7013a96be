"""`plugbox serve` under load: 50 clients, each pipelining 2,000 calls over
20 plugins, every answer checked against what was asked; beside them a
client that stops reading and one that vanishes mid-stream, which lose only
their own calls (issue 21, item 6).

The clients are processes, not threads, so that the test's own Python does
not set the pace; each reports what it got back through a pipe.
"""

import multiprocessing
import os
import shutil
import socket
import time

import pytest

import pbwire
from pbserve import serve, sockdir  # noqa: F401 (fixtures used by name)
from pbtest import scaled

N_PLUGINS, N_CLIENTS, PER_CLIENT, WINDOW = 20, 50, 2000, 64


@pytest.fixture
def echo_plugins(copy_plugins, paths):
    """tools, and N_PLUGINS copies of echo20 named e00, e01, ..."""
    target = copy_plugins(paths.plugins / "serve", only=["tools"])
    for i in range(N_PLUGINS):
        shutil.copytree(paths.plugins / "runtime" / "echo20", target / f"e{i:02d}",
                        ignore=shutil.ignore_patterns("__pycache__"))
        os.chmod(target / f"e{i:02d}", 0o755)
    return target


def client(sock, k, out):
    """Client k: PER_CLIENT calls, at most WINDOW unanswered at a time, spread
    over the plugins; sends (k, answers right, first wrong answer or error)."""
    right, wrong = 0, None
    try:
        conn = pbwire.Conn(sock, timeout=120)
        expected, sent = {}, 0
        while right < PER_CLIENT and wrong is None:
            while sent < PER_CLIENT and len(expected) < WINDOW:
                sent += 1
                name, x = f"e{(k + sent) % N_PLUGINS:02d}", f"c{k}-{sent}"
                expected[sent] = [name, x]
                conn.call(sent, name, "echo", x)
            reply = conn.recv(timeout=120)
            want = expected.pop(reply.get("id"), None)
            if reply.get("body") == "result" and want is not None and reply.get("value") == want:
                right += 1
            else:
                wrong = (reply, want)
        conn.close()
    except Exception as e:              # noqa: BLE001 (reported to the test)
        wrong = repr(e)
    out.send((k, right, wrong))
    out.close()


def test_fifty_clients_pipelining_two_thousand_calls_each(serve, echo_plugins):
    d = serve(echo_plugins, "--eager")
    warm = d.conn()
    for i in range(N_PLUGINS):          # every worker up before the clock starts
        warm.call(i + 1, f"e{i:02d}", "echo", i)
    assert sorted(warm.recv()["id"] for _ in range(N_PLUGINS)) == list(range(1, N_PLUGINS + 1))

    # A client that sends 2,000 calls for big answers and never reads them,
    # and one that sends 1,000 calls and vanishes in the middle of a frame.
    hog = socket.socket(socket.AF_UNIX)
    hog.connect(str(d.sock))
    hog.setblocking(False)
    hog_calls = b"".join(pbwire.call_frame(i, "tools", "big", [50_000]) for i in range(1, 2001))
    ghost = socket.socket(socket.AF_UNIX)
    ghost.connect(str(d.sock))
    ghost_calls = b"".join(pbwire.call_frame(i, f"e{i % N_PLUGINS:02d}", "echo", [i]) for i in range(1, 1001))

    ctx = multiprocessing.get_context("fork")
    pipes, procs = [], []
    start = time.monotonic()
    for k in range(N_CLIENTS):
        r, w = ctx.Pipe(duplex=False)
        p = ctx.Process(target=client, args=(str(d.sock), k, w))
        p.start()
        w.close()
        pipes.append(r)
        procs.append(p)
    try:
        hog.send(hog_calls)
    except BlockingIOError:
        pass                            # backpressure: the daemon stopped reading it
    ghost.sendall(ghost_calls + pbwire.call_frame(1001, "e00", "echo", [1001])[:7])
    ghost.close()

    results = {}
    for r in pipes:
        if r.poll(scaled(300)):
            k, right, wrong = r.recv()
            results[k] = (right, wrong)
    elapsed = time.monotonic() - start
    for p in procs:
        p.join(5)
        if p.is_alive():
            p.kill()
    hog.close()

    assert len(results) == N_CLIENTS, f"{N_CLIENTS - len(results)} clients never finished"
    bad = {k: v for k, v in results.items() if v != (PER_CLIENT, None)}
    assert not bad, list(bad.items())[:3]
    total = N_CLIENTS * PER_CLIENT
    print(f"{total} calls from {N_CLIENTS} clients over {N_PLUGINS} plugins in {elapsed:.1f} s "
          f"({total / elapsed:.0f} calls/s)")
    # The daemon is whole after it: it answers, and it said nothing of a crash.
    after = d.conn()
    after.call(1, "e07", "echo", "after")
    assert after.recv(timeout=10) == {"id": 1, "body": "result", "value": ["e07", "after"]}
    status, _ = d.stop()
    assert status == 0, d.stderr()[-2000:]
    assert "crash" not in d.stderr() and "died" not in d.stderr(), d.stderr()[-2000:]
