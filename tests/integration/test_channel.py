"""Hostile bytes on a worker's channel, against the real daemon.

A plugin (tests/plugins/channel/rogue) writes its worker's channel itself:
garbage, a length of 4 GiB, a length and then nothing, a thousand tiny
frames a millisecond, a Value nested 100000 deep, an answer to a call that
was never made, a second Hello; or it stops reading what the supervisor
sends. In every case the supervisor ends that worker with a `protocol` error
saying what it did, its own memory stays bounded, and another plugin served
by the same daemon goes on answering at its usual speed all the while.
"""

import os
import shutil
import statistics
import threading
import time

import pytest

from pbserve import serve, sockdir  # noqa: F401 (fixtures used by name)
from pbtest import MEMORY_FACTOR

# The supervisor's patience with a half-sent frame or an unread channel
# (supervisor/protocol.h, PB_CHANNEL_STALL_SECONDS).
STALL_SECONDS = 5.0
# What the daemon may grow by while one attack runs (VmHWM over the VmRSS
# before it): the largest attack here sends a frame under 1 MiB, and the
# unread call is 1 MiB. 4 GiB announced must cost nothing.
GROWTH_LIMIT_KIB = 32 * 1024

ATTACKS = {
    # function: (extra call arguments, what the protocol error must say)
    "garbage": ((), "sent an undecodable envelope"),
    "huge_length": ((), "announced a frame of 4294967295 bytes, over the limit of 16777216"),
    "length_then_nothing": ((), f"sent 10 of the 1000 bytes of a frame, then nothing for {STALL_SECONDS:g} s"),
    "flood": ((), "flooded its channel: more than 2000 log records in a second"),
    "deep": ((100000,), "value nested deeper than 64 levels"),
    "unknown_result": ((), "answered call 4242424242 while call"),
    "second_hello": ((), "sent hello (id 0) while running a call"),
    "stop_reading": ((), "stopped reading its channel: "),
}


@pytest.fixture
def channel_plugins(copy_plugins, paths):
    """rogue copied as rogue_<attack> for each attack, and a well-behaved
    plugin `steady` (echo20) beside them."""
    target = copy_plugins(paths.plugins / "channel", only=["rogue"])
    for attack in ATTACKS:
        shutil.copytree(target / "rogue", target / f"rogue_{attack}",
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(paths.plugins / "runtime" / "echo20", target / "steady",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for entry in target.iterdir():
        os.chmod(entry, 0o755)
    return target


class Steady:
    """Calls steady.echo in a loop on its own connection, timing each call."""

    def __init__(self, daemon):
        self.conn = daemon.conn()
        self.latencies = []
        self.failures = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def measure(self, n):
        """n calls in a row, now, after a few to warm up; returns their latencies."""
        for i in range(20):
            self._one(i)
        return [self._one(i) for i in range(n)]

    def watch(self, seconds):
        """Go on calling in the background; watched() waits until the
        calls have run for at least `seconds`."""
        self.until = time.monotonic() + seconds
        self.thread.start()

    def watched(self):
        time.sleep(max(0.0, self.until - time.monotonic()))

    def _one(self, i):
        start = time.monotonic()
        self.conn.call(i + 1, "steady", "echo", i, timeout=20)
        answer = self.conn.recv(timeout=20)
        elapsed = time.monotonic() - start
        if answer["body"] != "result" or answer["value"] != ["steady", i]:
            self.failures.append(answer)
        return elapsed

    def _run(self):
        i = 1000
        while not self.stop.is_set():
            self.latencies.append(self._one(i))
            i += 1
            time.sleep(0.002)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(30)
        self.conn.close()


def p95(values):
    return sorted(values)[max(0, int(len(values) * 0.95) - 1)]


def attack(daemon, plugin, function, args, expected):
    """Run one attack on its own connection; return the answer after
    checking it is the protocol error that names what the worker did."""
    conn = daemon.conn()
    try:
        if function == "stop_reading":
            conn.call(1, plugin, "stop_reading", timeout=30)
            first = conn.recv(timeout=30)
            assert first["body"] == "result" and first["value"] == "deaf from now on", first
            # The next call's 1 MiB argument can never be read.
            conn.call(2, plugin, "stop_reading", "x" * (1 << 20), timeout=30)
        else:
            conn.call(2, plugin, function, *args, timeout=30)
        answer = conn.recv(timeout=40)
    finally:
        conn.close()
    assert answer["id"] == 2, answer
    assert answer["body"] == "error" and answer["kind"] == "protocol", answer
    assert expected in answer["message"] and f"plugin '{plugin}'" in answer["message"], answer
    return answer


def check_others_unharmed(baseline, steady, daemon, rss_before):
    # ...the other plugin kept answering, every answer right and on time...
    assert not steady.failures, steady.failures[:3]
    assert len(steady.latencies) >= 10, steady.latencies
    usual = p95(baseline)
    during = p95(steady.latencies)
    assert during <= max(10 * usual, 0.05), \
        f"steady's p95 rose from {usual * 1e3:.2f} ms to {during * 1e3:.2f} ms during the attack"
    # ...and the supervisor's memory stayed bounded.
    grown = daemon.rss_kib("VmHWM") - rss_before
    assert grown < GROWTH_LIMIT_KIB * MEMORY_FACTOR, f"the daemon grew by {grown} KiB"


@pytest.mark.parametrize("function", list(ATTACKS))
def test_a_hostile_channel_ends_only_its_worker(serve, channel_plugins, function):  # noqa: F811
    args, expected = ATTACKS[function]
    daemon = serve(channel_plugins, "--timeout", "30", "--eager")
    plugin = f"rogue_{function}"
    with Steady(daemon) as steady:
        baseline = steady.measure(100)
        rss_before = daemon.rss_kib()
        steady.watch(1.0)
        started = time.monotonic()
        attack(daemon, plugin, function, args, expected)
        took = time.monotonic() - started
        steady.watched()
    # A stall is judged after PB_CHANNEL_STALL_SECONDS, everything else at once.
    if "nothing for" in expected or "stopped reading" in expected:
        assert STALL_SECONDS - 0.5 <= took < STALL_SECONDS + 5, took
    else:
        assert took < 5, took
    check_others_unharmed(baseline, steady, daemon, rss_before)
    # The daemon says why in its log, once, and lives on.
    assert daemon.stderr().count(expected) >= 1, daemon.stderr()
    assert daemon.proc.poll() is None


def test_every_attack_at_once(serve, channel_plugins):  # noqa: F811
    daemon = serve(channel_plugins, "--timeout", "30", "--eager")
    with Steady(daemon) as steady:
        baseline = steady.measure(100)
        rss_before = daemon.rss_kib()
        steady.watch(1.0)
        errors = []

        def run(function):
            try:
                args, expected = ATTACKS[function]
                attack(daemon, f"rogue_{function}", function, args, expected)
            except BaseException as e:  # noqa: B902 - reported below
                errors.append((function, e))
        threads = [threading.Thread(target=run, args=(f,)) for f in ATTACKS]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        steady.watched()
    assert not errors, errors
    check_others_unharmed(baseline, steady, daemon, rss_before)
    assert statistics.median(steady.latencies) < 0.05
    # After all that, a rogue worker is started again and answers honestly.
    conn = daemon.conn()
    conn.call(1, "rogue_garbage", "stop_reading", timeout=30)
    assert conn.recv(timeout=30)["value"] == "deaf from now on"
    conn.close()
