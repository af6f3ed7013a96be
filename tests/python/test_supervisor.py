"""plugbox.Supervisor as a host application uses it: opening and closing,
calls, listings, lifecycle, output, threads."""

import asyncio
import gc
import os
import signal
import sys
import threading
import time
import warnings

import pytest

import plugbox
from pbpy import TEST_TIMEOUT, alive, catch_unraisable, wait_until, worker_pids


def test_two_versions_of_one_dependency_in_one_host_process(supervisor, paths):
    sup = supervisor(paths.seed)
    assert sup.call("plug1", "requests_version") == "2.2.0"
    assert sup.call("plug2", "requests_version") == "2.3.0"
    assert sup.call("plug1", "requests_version") == "2.2.0"
    assert len(worker_pids()) == 2


def test_fork_server_workers_see_their_own_deps_and_end_with_the_host(paths):
    with plugbox.Supervisor(paths.seed, timeout=TEST_TIMEOUT, spawn="fork-server") as sup:
        assert sup.call("plug1", "requests_version") == "2.2.0"
        assert sup.call("plug2", "requests_version") == "2.3.0"
        layers = {p.name: p.layers for p in sup.plugins(workers=True)}
        assert all(any(l.startswith("start: cloned from the fork-server") for l in ls) for ls in layers.values())
        assert len(worker_pids()) == 3          # the fork-server and two workers, all our children
    assert wait_until(lambda: worker_pids() == [], 5)
    with pytest.raises(ValueError, match="spawn"):
        plugbox.Supervisor(paths.seed, spawn="vfork")


def test_zygote_workers_see_their_own_deps_and_end_with_the_host(paths):
    with plugbox.Supervisor(paths.seed, timeout=TEST_TIMEOUT, spawn="zygote") as sup:
        assert sup.call("plug1", "requests_version") == "2.2.0"
        assert sup.call("plug2", "requests_version") == "2.3.0"
        layers = {p.name: p.layers for p in sup.plugins(workers=True)}
        assert all(any(l.startswith("start: forked from its plugin's zygote") for l in ls)
                   for ls in layers.values()), layers
        assert not any("cloned from the fork-server" in l for ls in layers.values() for l in ls), layers
        # Our children are the two plugins' zygotes, each exec'd (no
        # fork-server); each worker is its zygote's.
        zygotes = worker_pids()
        assert len(zygotes) == 2
        assert all(len(worker_pids(z)) == 1 for z in zygotes)
    assert wait_until(lambda: worker_pids() == [], 5)


def test_shared_zygote_workers_see_their_own_deps_and_end_with_the_host(paths):
    with plugbox.Supervisor(paths.seed, timeout=TEST_TIMEOUT, spawn="shared-zygote") as sup:
        assert sup.call("plug1", "requests_version") == "2.2.0"
        assert sup.call("plug2", "requests_version") == "2.3.0"
        layers = {p.name: p.layers for p in sup.plugins(workers=True)}
        assert all(any(l.startswith("start: forked from its plugin's zygote, itself cloned from the fork-server")
                       for l in ls) for ls in layers.values()), layers
        # Our children are the fork-server and the two plugins' zygotes, its
        # clones (CLONE_PARENT); each worker is its zygote's.
        ours = worker_pids()
        zygotes = [pid for pid in ours if worker_pids(pid)]
        assert len(ours) == 3 and len(zygotes) == 2, ours
        assert all(len(worker_pids(z)) == 1 for z in zygotes)
    assert wait_until(lambda: worker_pids() == [], 5)
    with pytest.raises(ValueError, match="^spawn must be 'exec', 'fork-server', 'zygote' or 'shared-zygote', "
                                         "not 'shared_zygote'$"):
        plugbox.Supervisor(paths.seed, spawn="shared_zygote")


@pytest.mark.parametrize("spawn", ["exec", "fork-server", "zygote"])
def test_workers_start_in_a_host_with_many_descriptors_open(paths, spawn):
    # The child arranges its descriptors 0-6 and its exec channel at 63 from
    # whatever numbers the host's are: with the low ones taken, /dev/null
    # once landed on 63 and stdin became the channel (the start then hung).
    held = [os.open("/dev/null", os.O_RDONLY) for _ in range(80)]
    try:
        with plugbox.Supervisor(paths.seed, timeout=TEST_TIMEOUT, spawn=spawn) as sup:
            assert sup.call("plug1", "requests_version") == "2.2.0"
            assert sup.call("plug2", "requests_version") == "2.3.0"
    finally:
        for fd in held:
            os.close(fd)


def test_the_context_manager_closes_and_ends_every_worker(paths):
    with plugbox.Supervisor(paths.seed, timeout=TEST_TIMEOUT) as sup:
        assert not sup.closed
        sup.call("plug1", "requests_version")
        sup.call("plug2", "requests_version")
        pids = worker_pids()
        assert len(pids) == 2
    assert sup.closed
    assert "closed" in repr(sup)
    assert wait_until(lambda: not any(alive(p) for p in pids), 5), "a worker outlived close()"
    assert worker_pids() == []
    sup.close()   # again: nothing happens
    with pytest.raises(RuntimeError, match="closed"):
        sup.call("plug1", "requests_version")


def test_an_unclosed_supervisor_warns_and_ends_its_workers_when_collected(paths):
    sup = plugbox.Supervisor(paths.seed, timeout=TEST_TIMEOUT)
    sup.call("plug1", "requests_version")
    pid, = worker_pids()
    with pytest.warns(ResourceWarning, match="unclosed plugbox supervisor"):
        del sup
        gc.collect()
    assert not alive(pid)


def test_settings_are_checked_when_the_supervisor_is_made(paths, scratch):
    with pytest.raises(FileNotFoundError):
        plugbox.Supervisor(scratch / "nowhere")
    with pytest.raises(plugbox.ConfigError, match="policies directory"):
        plugbox.Supervisor(paths.seed, scratch / "nowhere")
    with pytest.raises(ValueError, match="timeout"):
        plugbox.Supervisor(paths.seed, timeout=-1)
    with pytest.raises(TypeError, match="timeout"):
        plugbox.Supervisor(paths.seed, timeout="10")
    with pytest.raises(TypeError, match="output"):
        plugbox.Supervisor(paths.seed, output="stderr")


def test_paths_may_be_pathlike_and_the_worker_explicit(supervisor, paths, policies):
    sup = supervisor(paths.seed, policies(), worker=os.environ["PLUGBOX_WORKER"])
    assert sup.plugins_dir == os.path.realpath(paths.seed)
    assert sup.call("plug2", "requests_version") == "2.3.0"


def test_a_missing_worker_binary_makes_the_plugin_unavailable(supervisor, paths, scratch):
    sup = supervisor(paths.seed, worker=scratch / "no-such-worker")
    with pytest.raises(plugbox.Unavailable, match="could not be started"):
        sup.call("plug1", "requests_version")


def test_keyword_arguments_and_a_per_call_timeout(supervisor, paths):
    sup = supervisor(paths.features)
    assert sup.call("echo", "echo_all", 1, "two", three=3, plugin="p", function="f") == \
        {"args": [1, "two"], "kwargs": {"three": 3, "plugin": "p", "function": "f"}}
    assert sup.call("slow", "sleep", 0.05, _timeout=5) == 0.05
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="_timeout"):
            sup.call("slow", "sleep", 0, _timeout=bad)
        with pytest.raises(ValueError, match="timeout"):
            sup.options(timeout=bad)


def test_a_plugin_keyword_named_timeout_reaches_the_plugin(supervisor, paths):
    """The call's deadline is _timeout (or sup.options(timeout=)); a keyword
    argument timeout= is the plugin's, in call, acall and hook alike."""
    sup = supervisor(paths.features)
    want = {"args": [1], "kwargs": {"timeout": 5, "retries": 2}}
    assert sup.call("echo", "echo_all", 1, timeout=5, retries=2, _timeout=None) == want
    assert sup.options(timeout=30).call("echo", "echo_all", 1, timeout=5, retries=2) == want
    assert asyncio.run(_acall(sup.options(timeout=30), "echo", "echo_all", 1, timeout=5, retries=2)) == want
    assert asyncio.run(_acall(sup, "echo", "echo_all", 1, timeout=5, retries=2, _timeout=30)) == want


async def _acall(target, *args, **kwargs):
    return await target.acall(*args, **kwargs)


def test_the_options_deadline_applies(supervisor, paths):
    sup = supervisor(paths.features)
    start = time.monotonic()
    with pytest.raises(plugbox.CallTimeout):
        sup.options(timeout=0.5).call("slow", "sleep", 30)
    with pytest.raises(plugbox.CallTimeout):
        sup.call("slow", "sleep", 30, _timeout=0.5)
    assert time.monotonic() - start < 20
    assert repr(sup.options(timeout=2)).startswith("<plugbox.CallOptions timeout=2 ")


def test_the_old_timeout_spelling_warns_that_it_reaches_the_plugin(supervisor, paths):
    """timeout= used to be the deadline: a caller that still writes it
    without _timeout is told, once per call site, that its meaning changed."""
    sup = supervisor(paths.features)
    with pytest.warns(DeprecationWarning, match="_timeout=") as caught:
        assert sup.call("echo", "echo_all", timeout=3) == {"args": [], "kwargs": {"timeout": 3}}
    assert caught[0].filename == __file__   # blamed on the caller's line
    with pytest.warns(DeprecationWarning, match="no longer sets the call's deadline"):
        sup.hook("plugbox.demo", timeout=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sup.call("echo", "echo_all", timeout=3, _timeout=None)
        sup.options().call("echo", "echo_all", timeout=3)
        sup.call("echo", "echo_all", 1)


# ---- listings ----------------------------------------------------------------------

def test_plugins_describes_each_plugin_as_its_worker_reports_it(supervisor, paths):
    sup = supervisor(paths.seed)
    infos = sup.plugins(workers=True)
    assert [p.name for p in infos] == ["plug1", "plug2"]
    plug1, plug2 = infos
    assert plug2.version == "1.0.0"       # plugin.toml
    assert plug1.layout == plug2.layout == "package"
    assert plug1.ok and plug1.error is None
    assert any(p.endswith("/plug1/deps") for p in plug1.sys_path)
    assert plug1.layers, "the sandbox layers in force"


def test_plugins_reports_layouts_versions_exports_and_entry_points(supervisor, paths):
    sup = supervisor(paths.features)
    mytool = sup.describe("mytool")
    assert isinstance(mytool, plugbox.PluginInfo)
    assert (mytool.name, mytool.layout, mytool.version) == ("mytool", "path", "1.0")   # *.dist-info
    assert plugbox.EntryPoint("plugbox.demo", "hello", "mytool.cli:hello") in mytool.entry_points
    ep = mytool.entry_points[0]
    assert (ep.group, ep.name, ep.value) == tuple(ep)
    tomllist = sup.describe("tomllist")
    assert tomllist.version == "3.1.4"
    assert tomllist.exports == ["square", "version_info"]
    with pytest.raises(plugbox.NotFound):
        sup.describe("no_such_plugin")


def test_a_plugin_that_cannot_start_is_listed_with_its_error_skipped_or_raised(supervisor, paths):
    sup = supervisor(paths.hooks)
    assert sup.plugin_names() == ["p0_broken", "p1_none", "p2_fails", "p3_value", "p4_value", "p5_none_group"]
    infos = sup.plugins()
    assert [p.name for p in infos] == sup.plugin_names()
    broken = infos[0]
    assert not broken.ok
    assert isinstance(broken.error, plugbox.ConfigError)
    assert "not_p0_broken" in str(broken.error)
    assert (broken.version, broken.layout, broken.exports, broken.entry_points) == (None, "", [], [])
    # in the order of the plugin's entry_points.txt
    assert sorted(infos[3].entry_points) == [("typeA", "run", "p3_value:run"), ("typeA", "zrun", "p3_value:second")]
    assert [p.name for p in sup.plugins(errors="skip")] == sup.plugin_names()[1:]
    with pytest.raises(plugbox.ConfigError):
        sup.plugins(errors="raise")
    with pytest.raises(ValueError):
        sup.plugins(errors="ignore")


def test_plugin_names_starts_no_worker(supervisor, paths):
    sup = supervisor(paths.seed)
    assert sup.plugin_names() == ["plug1", "plug2"]
    assert worker_pids() == []


# ---- lifecycle ---------------------------------------------------------------------

def drive_until(sup, predicate, seconds=10.0):
    end = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < end, "timed out"
        sup.dispatch(0.05)
    return True


def test_start_stop_and_state(supervisor, paths):
    sup = supervisor(paths.runtime)
    assert sup.state("echo20") == "stopped"
    sup.start("echo20")
    drive_until(sup, lambda: sup.state("echo20") == "ready")
    assert len(worker_pids()) == 1
    sup.stop("echo20")
    drive_until(sup, lambda: sup.state("echo20") == "stopped")
    assert wait_until(lambda: worker_pids() == [], 5)
    sup.stop("spinner")    # never started: nothing to do
    sup.reset("spinner")
    for method in (sup.state, sup.stop, sup.reset, sup.start):
        with pytest.raises(plugbox.NotFound):
            method("no_such_plugin")


def test_a_crash_loop_marks_the_plugin_failed_until_reset(supervisor, paths):
    sup = supervisor(paths.runtime)
    sup.set_restart(max_crashes=2, window=60, backoff=0.01, backoff_max=0.05)
    for _ in range(2):
        with pytest.raises(plugbox.WorkerCrashed):
            sup.call("spinner", "crash")
    assert sup.state("spinner") == "failed"
    t0 = time.monotonic()
    with pytest.raises(plugbox.Unavailable, match="2 times"):
        sup.call("spinner", "ok")
    assert time.monotonic() - t0 < 1
    assert sup.call("echo20", "echo", 1) == ["echo20", 1]
    sup.reset("spinner")
    assert sup.call("spinner", "ok") == "ok"
    with pytest.raises(ValueError):
        sup.set_restart(max_crashes=0)


def test_idle_workers_stop_while_the_host_dispatches(supervisor, paths):
    sup = supervisor(paths.runtime, idle_timeout=0.3)
    assert sup.call("spinner", "ok") == "ok"
    assert sup.state("spinner") == "ready"
    drive_until(sup, lambda: sup.state("spinner") == "stopped", 5)
    assert wait_until(lambda: worker_pids() == [], 5)
    assert sup.call("spinner", "ok") == "ok"


def test_shutdown_lets_calls_in_flight_finish(supervisor, paths):
    import asyncio
    sup = supervisor(paths.runtime)

    async def main():
        pending = asyncio.ensure_future(sup.acall("spinner", "sleep", 0.3))
        await asyncio.sleep(0.05)
        return pending

    loop = asyncio.new_event_loop()
    try:
        pending = loop.run_until_complete(main())
        # the synchronous shutdown drives the library itself; the answer
        # reaches the future through the loop, which runs again below
        sup.shutdown(grace=5)
        assert sup.closed
        assert loop.run_until_complete(pending) == 0.3
    finally:
        loop.close()
    assert worker_pids() == []


# ---- output ------------------------------------------------------------------------

def test_output_reaches_the_callback_tagged_with_plugin_and_stream(supervisor, paths):
    lines = []
    sup = supervisor(paths.features, output=lambda *a: lines.append(a))
    assert sup.call("printer", "say", "hello") == "done"
    assert ("printer", "stdout", "printer imported") in lines
    assert ("printer", "stdout", "hello") in lines
    assert ("printer", "stderr", "err: hello") in lines
    lines.clear()
    logs = supervisor(paths.runtime, output=lambda *a: lines.append(a), log="lines")
    logs.call("logger", "emit", "WARNING", "disk almost full")
    assert ("logger", "log", "WARNING logger.test: disk almost full") in lines


def test_a_failing_output_callback_does_not_break_the_loop(supervisor, paths):
    def bad(plugin, stream, line):
        raise ZeroDivisionError("output went wrong")

    sup = supervisor(paths.features, output=bad)
    with catch_unraisable() as seen:
        assert sup.call("printer", "say", "x") == "done"
    assert seen and all(isinstance(u.exc_value, ZeroDivisionError) for u in seen)


def test_the_output_callback_may_not_call_the_supervisor(supervisor, paths):
    holder = []

    def nosy(plugin, stream, line):
        holder[0].call("echo", "echo", 1)

    sup = supervisor(paths.features, output=nosy)
    holder.append(sup)
    with catch_unraisable() as seen:
        assert sup.call("printer", "say", "x") == "done"
    assert seen and all(isinstance(u.exc_value, RuntimeError) for u in seen)
    assert "output callback" in str(seen[0].exc_value)


# ---- threads and signals -------------------------------------------------------------

def test_threads_take_turns_and_the_library_refuses_a_second_thread(supervisor, copy_plugins, paths):
    plugins = copy_plugins({"slow": paths.features / "slow", "echo": paths.features / "echo"})
    sup = supervisor(plugins)
    # started from this thread, which outlives the others (see the next test)
    sup.start("slow")
    results, errors = [], []

    def worker(n):
        try:
            results.append(sup.call("slow", "sleep", n))
        except Exception as e:   # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in (0.2, 0.25, 0.3)]
    for t in threads:
        t.start()
    # while a thread is inside the library, the raw binding refuses another
    assert wait_until(lambda: sup.calls_pending > 0, 5)
    with pytest.raises(RuntimeError, match="another thread"):
        sup._core.call("echo", "echo", (1,), None, 0.0)
    for t in threads:
        t.join(TEST_TIMEOUT)
    assert errors == []
    assert sorted(results) == [0.2, 0.25, 0.3]
    assert sup.call("echo", "echo", 1) == 1


def test_a_signal_interrupts_a_blocking_call_which_finishes_unobserved(supervisor, paths):
    sup = supervisor(paths.runtime)
    sup.call("spinner", "ok")

    class Interrupted(Exception):
        pass

    def handler(signum, frame):
        raise Interrupted()

    old = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        t0 = time.monotonic()
        with pytest.raises(Interrupted):
            sup.call("spinner", "sleep", 1.0)
        assert time.monotonic() - t0 < 0.9
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    # the abandoned call still runs first; the next call gets its own answer
    assert sup.call("spinner", "sleep", 0.01) == 0.01
    assert sup.calls_pending == 0


@pytest.mark.parametrize("spawn", ["exec", "fork-server", "zygote"])
def test_a_worker_started_by_a_thread_that_ends_lives_on(paths, spawn):
    # PR_SET_PDEATHSIG fires when the *thread* that cloned the worker exits;
    # libplugbox clones from a thread of its own that lives as long as the
    # process (supervisor/jail/spawner.c).
    with plugbox.Supervisor(paths.seed, timeout=TEST_TIMEOUT, spawn=spawn) as sup:
        t = threading.Thread(target=sup.call, args=("plug1", "requests_version"))
        t.start()
        t.join(TEST_TIMEOUT)
        before = worker_pids()
        time.sleep(0.2)
        assert worker_pids() == before and before
        assert sup.call("plug1", "requests_version") == "2.2.0"
        assert worker_pids() == before


def test_a_worker_started_from_a_thread_pool_answers_the_main_thread(paths):
    from concurrent.futures import ThreadPoolExecutor
    with plugbox.Supervisor(paths.seed, timeout=TEST_TIMEOUT) as sup:
        with ThreadPoolExecutor(max_workers=2) as pool:
            assert pool.submit(sup.call, "plug1", "requests_version").result(TEST_TIMEOUT) == "2.2.0"
            assert pool.submit(sup.call, "plug2", "requests_version").result(TEST_TIMEOUT) == "2.3.0"
        # the pool's threads are gone now
        time.sleep(0.2)
        assert sup.call("plug1", "requests_version") == "2.2.0"
        assert sup.call("plug2", "requests_version") == "2.3.0"
        assert sup.state("plug1") == sup.state("plug2")


HOST_THAT_DIES = """
import os, sys, threading, time
import plugbox
sup = plugbox.Supervisor(sys.argv[1], timeout=20, spawn=sys.argv[2])
t = threading.Thread(target=sup.call, args=("plug1", "requests_version"))
t.start(); t.join()
sup.call("plug2", "requests_version")
print("ready", flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("spawn", ["exec", "fork-server", "zygote", "shared-zygote"])
def test_workers_end_when_the_host_is_killed(paths, spawn):
    import subprocess
    host = subprocess.Popen([sys.executable, "-c", HOST_THAT_DIES, str(paths.seed), spawn],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert host.stdout.readline().strip() == "ready"
        workers = worker_pids(host.pid)
        assert len(workers) == (3 if spawn in ("fork-server", "shared-zygote") else 2), workers  # and the fork-server
    finally:
        host.kill()
        host.wait()
        host.stdout.close()
    # Reparented to init (or a subreaper) and killed by their parent-death signal.
    assert wait_until(lambda: not any(alive(pid) for pid in workers), 5), \
        [pid for pid in workers if alive(pid)]


def test_a_forked_child_cannot_touch_its_parents_supervisor(supervisor, paths):
    sup = supervisor(paths.seed)
    assert sup.call("plug1", "requests_version") == "2.2.0"
    pid = os.fork()
    if pid == 0:   # the child: report through the exit status, never return into pytest
        status = 1
        try:
            try:
                sup.call("plug1", "requests_version")
            except RuntimeError as e:
                if "fork" in str(e):
                    sup.close()    # forgets the parent's supervisor, ends nothing
                    status = 0
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert sup.call("plug1", "requests_version") == "2.2.0"
    assert len(worker_pids()) == 1


def test_max_replicas_caps_a_policys_replicas_and_is_checked(supervisor, copy_plugins, paths, policies):
    # The policy asks for 4 workers; max_replicas=2 lets two calls run at
    # once, from two workers, and a note says why. Without the option the
    # library's cap (8) would let all four run together.
    plugins = copy_plugins({"busy": paths.plugins / "replicas" / "busy"})
    pol = policies({"busy": "@replicas 4\n@include default\n"})
    lines = []
    sup = supervisor(plugins, pol, max_replicas=2, log="lines",
                     output=lambda plugin, stream, line: lines.append((plugin, stream, line)))

    async def main():
        return await asyncio.gather(*(sup.acall("busy", "work", 0.6, i) for i in range(6)))
    runs = asyncio.run(main())
    edges = sorted([(r["start"], 1) for r in runs] + [(r["end"], -1) for r in runs])
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    assert most == 2, runs
    assert len({r["worker"] for r in runs}) == 2, runs
    assert any("@replicas 4: this supervisor allows at most 2" in line for _, _, line in lines), lines

    for bad, error in [(0, ValueError), (65, ValueError), (-1, ValueError), (2.0, TypeError),
                       (True, TypeError), ("2", TypeError)]:
        with pytest.raises(error, match="max_replicas"):
            plugbox.Supervisor(plugins, pol, max_replicas=bad)
