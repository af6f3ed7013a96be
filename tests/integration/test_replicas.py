"""Replicas (`@replicas N` in a plugin's policy): up to N workers of one
plugin answer its calls at once, from one queue, so calls start in the
order they came; each worker runs one call at a time; a crash of one
leaves the others answering; the supervisor caps N (--max-replicas).

Times are read inside the workers (busy/__init__.py), so that what is
compared is when the calls really ran, not when their answers came back.
"""

import pytest

from pbserve import serve, sockdir  # noqa: F401 (fixtures used by name)

BASE = "@include default\n"


@pytest.fixture
def plugins(copy_plugins, paths):
    return copy_plugins(paths.plugins / "replicas")


def answers(conn, n):
    """The next n replies, by id; each must be a result."""
    got = {}
    for _ in range(n):
        reply = conn.recv(60)
        assert reply["body"] == "result", reply
        got[reply["id"]] = reply["value"]
    return got


def most_at_once(runs):
    """The most calls that ran at the same time, from their start and end."""
    edges = sorted([(r["start"], 1) for r in runs] + [(r["end"], -1) for r in runs])
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def start_daemon(serve, plugins, policies_with, spawn, replicas, *options):
    text = (f"@replicas {replicas}\n" if replicas else "") + BASE
    return serve(plugins, "--policies", policies_with(busy=text), "--spawn", spawn, *options)


@pytest.mark.parametrize("spawn", ["zygote", "exec"])
def test_two_replicas_run_two_calls_at_once_and_one_serialises(serve, plugins, policies_with, sockdir, spawn):
    # One replica (no @replicas): two calls of 1 s run one after the other.
    # (1 s: time enough for a second worker to start on a slow machine.)
    d = serve(plugins, "--policies", policies_with(busy=BASE), "--spawn", spawn, sock=sockdir / "one.sock")
    conn = d.conn()
    conn.call(1, "busy", "work", 1.0, 1)
    conn.call(2, "busy", "work", 1.0, 2)
    one = answers(conn, 2)
    assert most_at_once(one.values()) == 1, one
    assert len({r["worker"] for r in one.values()}) == 1
    d.stop()
    # Two: both start before either ends, each in a worker of its own.
    d = serve(plugins, "--policies", policies_with(busy="@replicas 2\n" + BASE), "--spawn", spawn,
              sock=sockdir / "two.sock")
    conn = d.conn()
    conn.call(1, "busy", "work", 1.0, 1)
    conn.call(2, "busy", "work", 1.0, 2)
    two = answers(conn, 2)
    a, b = two[1], two[2]
    assert a["start"] < b["end"] and b["start"] < a["end"], two
    assert a["worker"] != b["worker"]
    if spawn == "zygote":
        assert "starting workers with exec" not in d.stderr()
    d.stop()


def test_calls_start_in_the_order_they_came(serve, plugins, policies_with):
    # Both replicas busy (1.2 s and 0.3 s), then three calls queue: each
    # must start after the one before it, whichever worker is free first.
    # A worker given calls of its own ahead of time (as one worker is
    # pipelined) would start call 3 only after the 1.2 s one.
    d = start_daemon(serve, plugins, policies_with, "zygote", 2)
    conn = d.conn()
    conn.call(1, "busy", "work", 0.3, 0)        # make both replicas start
    conn.call(2, "busy", "work", 0.3, 0)
    answers(conn, 2)
    conn.call(10, "busy", "work", 1.2, 10)
    conn.call(11, "busy", "work", 0.3, 11)
    for i in range(12, 16):
        conn.call(i, "busy", "work", 0.3, i)
    got = answers(conn, 6)
    starts = [got[i]["start"] for i in range(11, 16)]
    assert starts == sorted(starts), got
    assert got[12]["start"] < got[10]["end"] and got[13]["start"] < got[10]["end"], got
    assert most_at_once(got.values()) == 2
    d.stop()


@pytest.mark.parametrize("spawn", ["zygote", "exec"])
def test_a_worker_never_runs_two_calls_at_once(serve, plugins, policies_with, spawn):
    # Many calls, two replicas: the plugin raises if a call arrives in a
    # worker while that worker runs one (its busy flag), and per worker
    # the calls' times never overlap.
    d = start_daemon(serve, plugins, policies_with, spawn, 2)
    conn = d.conn()
    for i in range(1, 21):
        conn.call(i, "busy", "work", 0.02, i)
    got = answers(conn, 20)
    by_worker = {}
    for r in got.values():
        by_worker.setdefault(r["worker"], []).append(r)
    assert len(by_worker) == 2, by_worker.keys()
    for runs in by_worker.values():
        assert most_at_once(runs) == 1, runs
    d.stop()


def test_a_crashed_replica_leaves_the_other_answering(serve, plugins, policies_with):
    # One replica crashes; the calls after it, made one at a time, are
    # answered by the other at once (a new worker is started only when
    # calls wait for one).
    d = start_daemon(serve, plugins, policies_with, "zygote", 2)
    conn = d.conn()
    conn.call(1, "busy", "work", 0.3, 1)
    conn.call(2, "busy", "work", 0.3, 2)
    first = answers(conn, 2)
    workers = {r["worker"] for r in first.values()}
    assert len(workers) == 2
    conn.call(3, "busy", "crash")
    reply = conn.recv(30)
    assert reply["id"] == 3 and reply["body"] == "error" and "exit" in str(reply).lower(), reply
    for i in range(4, 8):
        conn.call(i, "busy", "work", 0.01, i)
        [r] = answers(conn, 1).values()
        assert r["worker"] in workers, (r, workers)   # a survivor, not a new one
    d.stop()


def test_the_supervisor_caps_replicas(serve, plugins, policies_with):
    # The policy asks for 4; this supervisor allows 2: at most two calls
    # run at once, from two workers, and a note says why.
    d = start_daemon(serve, plugins, policies_with, "zygote", 4, "--max-replicas", "2")
    conn = d.conn()
    for i in range(1, 7):
        conn.call(i, "busy", "work", 0.6, i)
    got = answers(conn, 6)
    assert most_at_once(got.values()) == 2, got
    assert len({r["worker"] for r in got.values()}) == 2
    assert "@replicas 4: this supervisor allows at most 2" in d.stderr()
    d.stop()


def test_replicas_in_a_policy_are_checked_and_shown(plugbox, scratch, paths, policies_with):
    bad = scratch / "bad.policy"
    for text, expect in [("@replicas 65\n", "bad.policy:1:11: @replicas takes a number of workers from 1 to 64"),
                         ("@replicas 0\n", "bad.policy:1:11: @replicas takes a number of workers from 1 to 64"),
                         ("@replicas two\n", "not 'two'"),
                         ("@replicas\n", "@replicas needs a number"),
                         ("@replicas 2 3\n", "bad.policy:1:13: unexpected text after @replicas 2"),
                         ("@replica 2\n", "did you mean '@replicas'?"),
                         ("@replicas 2\n@replicas 3\n", "bad.policy:2:1: a second @replicas in this file")]:
        bad.write_text(text)
        cp = plugbox.run(["policy", "check", str(bad)])
        assert cp.returncode == 2 and expect in cp.stderr, (text, cp.stderr)
    policies = policies_with(good="@replicas 3\n" + BASE, plain=BASE)
    cp = plugbox.run(["policy", "show", "--policies", str(policies), "good"])
    assert cp.returncode == 0 and "@replicas 3 (" in cp.stdout and "good.policy:1)" in cp.stdout, cp.stdout
    cp = plugbox.run(["policy", "show", "--policies", str(policies), "plain"])
    assert cp.returncode == 0 and "@replicas" not in cp.stdout, cp.stdout   # the default: one worker
    cp = plugbox.run(["call", "--max-replicas", "65", "--plugins", str(paths.plugins / "replicas"), "busy", "spin", "1"])
    assert cp.returncode == 2 and "--max-replicas must be a number from 1 to 64" in cp.stderr, cp.stderr
