"""acall() on asyncio: the running loop watches the library's descriptor (no
thread per call, no executor), calls to different plugins run at once."""

import asyncio
import threading
import time

import pytest

import plugbox
from pbpy import TEST_TIMEOUT, wait_until, worker_pids

N = 4


@pytest.fixture
def slows(supervisor, copy_plugins, paths):
    """A supervisor over N copies of features/slow (slow0 ...), plus echo."""
    plugins = copy_plugins({**{f"slow{i}": paths.features / "slow" for i in range(N)},
                            "echo": paths.features / "echo", "raiser": paths.features / "raiser"})
    return supervisor(plugins)


def watched(loop, sup):
    """True if the loop watches the supervisor's descriptor now."""
    return sup.fileno() in loop._selector.get_map()


def test_acall_returns_values_and_raises_errors(slows):
    async def main():
        assert await slows.acall("echo", "echo_all", 1, k=[b"x"]) == {"args": [1], "kwargs": {"k": [b"x"]}}
        with pytest.raises(plugbox.PluginError, match="ValueError: boom"):
            await slows.acall("raiser", "fail", "boom")
        with pytest.raises(plugbox.NotFound):
            await slows.acall("nobody", "f")
        with pytest.raises(TypeError, match="argument 1: cannot send set"):
            await slows.acall("echo", "echo", {1})
        with pytest.raises(plugbox.CallTimeout):
            await slows.acall("slow0", "sleep", 5, _timeout=0.3)

    asyncio.run(main())


def test_calls_to_different_plugins_run_at_once_on_one_thread(slows):
    names = [f"slow{i}" for i in range(N)]

    async def main():
        await asyncio.gather(*(slows.acall(n, "sleep", 0) for n in names))   # workers started
        loop = asyncio.get_running_loop()
        threads = threading.active_count()
        t0 = time.monotonic()
        calls = asyncio.gather(*(slows.acall(n, "sleep", 0.5) for n in names))
        await asyncio.sleep(0.1)
        assert watched(loop, slows) and slows.calls_pending == N
        assert threading.active_count() == threads, "acall must not start threads"
        assert await calls == [0.5] * N
        elapsed = time.monotonic() - t0
        assert 0.5 <= elapsed < N * 0.5 * 0.6, f"{N} calls of 0.5 s took {elapsed:.2f} s"
        # nothing pending: the loop no longer watches the supervisor
        assert not watched(loop, slows)

    asyncio.run(main())


def test_a_cancelled_await_cancels_the_call_and_the_next_one_runs(slows):
    async def main():
        task = asyncio.ensure_future(slows.acall("slow0", "sleep", 5))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # the next call does not wait for the cancelled one to end
        started = time.monotonic()
        assert await slows.acall("slow0", "sleep", 0.01) == 0.01
        assert time.monotonic() - started < 2
        assert slows.calls_pending == 0

    asyncio.run(main())


def test_a_loop_that_ended_with_a_call_running_leaves_no_trace(slows):
    async def leave_one_running():
        asyncio.ensure_future(slows.acall("slow1", "sleep", 5))
        await asyncio.sleep(0.05)

    asyncio.run(leave_one_running())   # cancels the task, and so the call

    async def again():
        return await slows.acall("slow1", "sleep", 0)

    started = time.monotonic()
    assert asyncio.run(again()) == 0   # a new loop takes over
    assert time.monotonic() - started < 2
    assert slows.calls_pending == 0


def test_one_loop_at_a_time(slows):
    first, second = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        async def start():
            return asyncio.ensure_future(slows.acall("slow2", "sleep", 0.2))
        pending = first.run_until_complete(start())
        with pytest.raises(RuntimeError, match="another event loop"):
            second.run_until_complete(slows.acall("echo", "echo", 1))
        assert first.run_until_complete(pending) == 0.2
        assert second.run_until_complete(slows.acall("echo", "echo", 1)) == 1
    finally:
        first.close()
        second.close()


def test_a_blocking_call_in_a_coroutine_answers_the_pending_acalls_too(slows):
    async def main():
        pending = asyncio.ensure_future(slows.acall("slow0", "sleep", 0.2))
        await asyncio.sleep(0.02)
        assert slows.call("slow1", "sleep", 0.4) == 0.4    # blocks the loop meanwhile
        assert pending.done() or await pending == 0.2
        assert await pending == 0.2

    asyncio.run(main())


def test_closing_with_calls_pending_fails_them_as_unavailable(slows):
    async def main():
        pending = [asyncio.ensure_future(slows.acall(f"slow{i}", "sleep", 5)) for i in range(2)]
        await asyncio.sleep(0.2)
        slows.close()
        for p in pending:
            with pytest.raises(plugbox.Unavailable):
                await p

    asyncio.run(main())
    assert wait_until(lambda: worker_pids() == [], 5)


def test_async_with_and_a_graceful_aclose(paths):
    async def main():
        async with plugbox.Supervisor(paths.seed, timeout=TEST_TIMEOUT) as sup:
            assert await sup.acall("plug1", "requests_version") == "2.2.0"
        assert sup.closed and worker_pids() == []

        sup = plugbox.Supervisor(paths.runtime, timeout=TEST_TIMEOUT)
        pending = asyncio.ensure_future(sup.acall("spinner", "sleep", 0.3))
        await asyncio.sleep(0.1)
        await sup.aclose(grace=5)          # the call in flight finishes first
        assert await pending == 0.3
        assert sup.closed and worker_pids() == []

    asyncio.run(main())


def test_attach_keeps_the_loop_driving_idle_stops(supervisor, paths):
    sup = supervisor(paths.runtime, idle_timeout=0.3)

    async def main():
        assert await sup.acall("spinner", "ok") == "ok"
        sup.attach()
        t0 = time.monotonic()
        while sup.state("spinner") != "stopped":
            assert time.monotonic() - t0 < 5, "the idle worker was not stopped"
            await asyncio.sleep(0.05)
        assert watched(asyncio.get_running_loop(), sup)
        sup.detach()
        assert not watched(asyncio.get_running_loop(), sup)

    asyncio.run(main())


@pytest.fixture
def hosted(supervisor, paths, policies, copy_plugins):
    plugins = copy_plugins({"hostpy": paths.own / "hostpy", "slow": paths.features / "slow"})
    return supervisor(plugins, policies({"hostpy": "@include default\n@host-call aget\n"}))


def test_an_async_host_function_answers_when_it_completes(hosted):
    sup = hosted

    @sup.register("aget")
    async def aget(x):
        await asyncio.sleep(0.5)
        return x * 2

    async def main():
        await asyncio.gather(sup.acall("hostpy", "echo", 0), sup.acall("slow", "sleep", 0))  # started
        t0 = time.monotonic()
        # the loop runs other calls while the host function awaits
        answer, slept = await asyncio.gather(sup.acall("hostpy", "host", "aget", 21),
                                             sup.acall("slow", "sleep", 0.5))
        assert (answer, slept) == ({"value": 42}, 0.5)
        assert time.monotonic() - t0 < 0.9, "one after the other: 1 s"
        # blocking the loop's thread in call(): the host function cannot run
        assert sup.call("hostpy", "host", "aget", 1)["error"][0] == "RuntimeError"

    asyncio.run(main())
    # no loop at all: it is run to completion where it is
    assert sup.call("hostpy", "host", "aget", 5) == {"value": 10}


def test_an_async_host_function_that_raises(hosted):
    sup = hosted

    @sup.register("aget")
    async def aget():
        await asyncio.sleep(0)
        raise KeyError("later")

    async def main():
        return await sup.acall("hostpy", "host", "aget")

    assert asyncio.run(main()) == {"error": ["KeyError", "'later'", None]}
