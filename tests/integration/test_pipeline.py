"""Calls pipelined to one worker, through the real daemon: one connection
to `plugbox serve` keeps up to 64 calls in flight to one plugin
(tests/plugins/pipeline/batch), which the supervisor writes ahead to its
worker. Every call is answered once and right, one worker runs them in the
order sent, and a crash in the middle of the batch ends only the call that
ran: the calls behind it had not started and run on the next worker.
(Host calls, time limits and hostile answers with calls pipelined behind
them: tests/unit/check_pipeline.c.)"""

import pytest

from pbserve import serve, sockdir  # noqa: F401 (fixtures used by name)


@pytest.fixture
def batch_plugins(copy_plugins, paths):
    return copy_plugins(paths.plugins / "pipeline", only=["batch"])


def call_all(daemon, calls):
    """Send every (function, args) at once on one connection; the replies by id (1, 2, ...)."""
    conn = daemon.conn()
    try:
        for i, (function, args) in enumerate(calls, 1):
            conn.call(i, "batch", function, *args, timeout=60)
        replies = [conn.recv(timeout=90) for _ in calls]
    finally:
        conn.close()
    by_id = {r["id"]: r for r in replies}
    assert sorted(by_id) == list(range(1, len(calls) + 1)), replies
    return by_id


def test_sixty_four_calls_in_flight_are_run_in_order_by_one_worker(serve, batch_plugins):  # noqa: F811
    daemon = serve(batch_plugins, "--timeout", "60")
    for _ in range(3):
        replies = call_all(daemon, [("seq", (i,)) for i in range(64)])
        values = [replies[i + 1] for i in range(64)]
        assert all(r["body"] == "result" for r in values), values
        counts = [r["value"][0] for r in values]
        assert [r["value"][1] for r in values] == list(range(64))
        # the n-th seq call of one worker, the calls in the order sent
        assert counts == list(range(counts[0], counts[0] + 64)), counts
    assert "worker ended" not in daemon.stderr()


def test_a_crash_in_the_middle_of_a_batch_ends_only_the_call_that_ran(serve, batch_plugins):  # noqa: F811
    daemon = serve(batch_plugins, "--timeout", "60")
    calls = [("seq", (i,)) for i in range(30)] + [("crash", ())] + [("seq", (i,)) for i in range(31, 64)]
    replies = call_all(daemon, calls)
    crash = replies[31]
    assert crash["body"] == "error" and crash["kind"] == "crashed", crash
    before = [replies[i + 1] for i in range(30)]
    after = [replies[i + 1] for i in range(31, 64)]
    assert all(r["body"] == "result" for r in before + after), before + after
    counts = [r["value"][0] for r in before]
    assert counts == list(range(counts[0], counts[0] + 30)), counts
    # the calls behind the crash never started: a new worker ran them all, in order
    assert [r["value"][0] for r in after] == list(range(1, 34))
    assert [r["value"][1] for r in after] == list(range(31, 64))
    assert daemon.stderr().count("worker ended") == 1, daemon.stderr()
