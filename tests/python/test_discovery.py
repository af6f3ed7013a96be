"""Discovery without a worker per plugin (Supervisor.entry_points, plugins,
EntryPoint.load) and the hook options a pluggy-style host needs (first
result in turn, plugins=, order=, unknown groups, keyword pruning, ahook).

The plugins are made per test in a scratch directory: path-layout plugins
whose *.dist-info/entry_points.txt names their entry points, each calling
the host function `seen` before it answers, so that a test knows which
implementations ran."""

import asyncio
import os
import time

import pytest

import plugbox
from pbpy import worker_pids


def _plugin(root, name, entries, *, priority=None, body="", group="demo.hooks"):
    """Plugin NAME under root: module NAME with `body`, entry points
    {entry: "module:attr"} of `group`, and plugin.toml's priority."""
    top = root / name
    (top / name).mkdir(parents=True)
    (top / name / "__init__.py").write_text("import plugbox\n" + body)
    info = top / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[{group}]\n" + "".join(f"{e} = {ref}\n" for e, ref in entries.items()))
    if priority is not None:
        (top / "plugin.toml").write_text(f"priority = {priority}\n")
    return top


def _readable(root):
    for path in [root, *root.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    return root


def _answering(name, value):
    return f"def impl(*args, **kwargs):\n    plugbox.host.seen({name!r})\n    return {value!r}\n"


@pytest.fixture
def three(scratch, policies, supervisor):
    """(sup, seen): a1 answers None (priority 1), b2 "b" (priority 5), c3
    "c" (priority 10); seen lists the plugins whose implementation ran."""
    root = scratch / "plugins"
    for name, value, prio in (("a1", None, 1), ("b2", "b", 5), ("c3", "c", 10)):
        _plugin(root, name, {"impl": f"{name}:impl"}, priority=prio, body=_answering(name, value))
    _readable(root)
    grant = "@include default\n@host-call seen\n"
    sup = supervisor(root, policies({n: grant for n in ("a1", "b2", "c3")}))
    seen = []
    sup.register("seen", seen.append)
    return sup, seen


# ---- discovery -----------------------------------------------------------------------


def test_entry_points_over_many_plugins_start_no_worker(scratch, supervisor):
    root = scratch / "many"
    for i in range(28):
        _plugin(root, f"p{i:02d}", {"run": f"p{i:02d}:run", "other": f"p{i:02d}:other"},
                body="def run(x=0):\n    return x + 1\n")
    _plugin(root, "elsewhere", {"tool": "elsewhere:run"}, group="other.group", body="def run():\n    return 0\n")
    sup = supervisor(_readable(root))
    pairs = sup.entry_points("demo.hooks")
    assert len(pairs) == 56
    assert pairs[0][0] == "p00" and (pairs[0][1].group, pairs[0][1].name) == ("demo.hooks", "run")
    assert [p for p, _ in sup.entry_points("other.group")] == ["elsewhere"]
    assert len(sup.entry_points()) == 57
    infos = sup.plugins()
    assert len(infos) == 29 and all(i.ok and i.layout == "path" and i.version == "1.0" for i in infos)
    assert worker_pids() == [], "listing started a worker"
    for name in sup.plugin_names():
        assert sup.state(name) in (None, "stopped")
    # load() gives a proxy; only calling it starts that plugin's worker
    plugin, ep = pairs[2]
    fn = ep.load()
    assert ep.plugin == plugin == "p01" and worker_pids() == []
    assert fn(x=41) == 42
    assert len(worker_pids()) == 1
    assert repr(fn) == "<plugbox.LoadedEntryPoint demo.hooks:run of plugin 'p01'>"
    with pytest.raises(TypeError, match="not bound"):
        plugbox.EntryPoint("g", "n", "m:a").load()
    assert plugbox.EntryPoint("demo.hooks", "run", "p01:run") == ep     # still the plain tuple


def test_the_discovery_cache_lasts_until_a_plugin_changes(scratch, supervisor):
    root = scratch / "plugins"
    for i in range(6):
        _plugin(root, f"q{i}", {"run": f"q{i}:run"}, body="def run():\n    return 1\n")
    sup = supervisor(_readable(root))
    t0 = time.monotonic()
    assert len(sup.entry_points()) == 6
    scanned = time.monotonic() - t0
    t0 = time.monotonic()
    for _ in range(5):
        assert len(sup.entry_points()) == 6
    cached = (time.monotonic() - t0) / 5
    assert cached * 5 < scanned, f"a cached listing took {cached:.3f} s, the scan {scanned:.3f} s"
    # an entry point added in place, a priority in a new plugin.toml, a new plugin
    with open(root / "q1" / "q1-1.0.dist-info" / "entry_points.txt", "a") as f:
        f.write("extra = q1:run\n")
    (root / "q2" / "plugin.toml").write_text("priority = 7\n")
    _plugin(root, "q9", {"run": "q9:run"}, body="def run():\n    return 9\n")
    _readable(root)
    assert ("q1", "extra") in [(p, ep.name) for p, ep in sup.entry_points()]
    assert {i.name: i.priority for i in sup.plugins()}["q2"] == 7
    assert "q9" in [p for p, _ in sup.entry_points()]
    assert worker_pids() == []


HOSTILE = {
    "huge_toml": lambda d: (d / "plugin.toml").write_bytes(b"x = '" + b"a" * (3 << 20) + b"'\n"),
    "nested_toml": lambda d: (d / "plugin.toml").write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n"),
    "bad_toml": lambda d: (d / "plugin.toml").write_bytes(b"\xff\xfe = = [\n"),
    "escapes_toml": lambda d: (d / "plugin.toml").write_text('version = "1.0\\u001b[31mRED\\u001b]0;owned\\u0007"\n'),
    "bad_priority": lambda d: (d / "plugin.toml").write_text("priority = 'high'\n"),
    "huge_eps": lambda d: (d / "huge_eps-1.0.dist-info" / "entry_points.txt").write_bytes(
        b"[demo.hooks]\n" + b"x = y:z\n" * 600_000),
    "bad_eps": lambda d: (d / "bad_eps-1.0.dist-info" / "entry_points.txt").write_bytes(b"[demo.hooks\n\x00\xff=\n"),
    "deep_init": lambda d: (d / "__init__.py").write_text("__version__ = " + "(" * 50_000 + "1" + ")" * 50_000 + "\n"),
}


def test_hostile_metadata_cannot_crash_or_stall_discovery(scratch, supervisor):
    root = scratch / "plugins"
    _plugin(root, "good", {"run": "good:run"}, body="def run():\n    return 'good'\n")
    for name, spoil in HOSTILE.items():
        if name.endswith("_eps"):
            _plugin(root, name, {"run": f"{name}:run"})
        else:
            (root / name).mkdir(parents=True)
        spoil(root / name)
    sup = supervisor(_readable(root))
    t0 = time.monotonic()
    infos = {i.name: i for i in sup.plugins()}
    took = time.monotonic() - t0
    assert took < 30, f"discovery took {took:.1f} s"
    assert infos["good"].ok and [ep.name for ep in infos["good"].entry_points] == ["run"]
    for name in ("huge_toml", "nested_toml", "bad_toml", "bad_priority", "huge_eps", "bad_eps", "deep_init"):
        assert isinstance(infos[name].error, plugbox.ConfigError), (name, infos[name])
    assert "larger than" in str(infos["huge_toml"].error)
    assert "larger than" in str(infos["huge_eps"].error)
    # text from a plugin reaches the host as it is, and only through
    # values; the command line sanitises it (test_cli)
    assert infos["escapes_toml"].ok and "\x1b" in infos["escapes_toml"].version
    # a broken plugin does not hide the others, and nothing started
    assert [p for p, _ in sup.entry_points("demo.hooks")] == ["good"]
    answers = {r.plugin: r for r in sup.hook("demo.hooks")}
    assert answers["good"].value == "good"
    assert isinstance(answers["huge_toml"].error, plugbox.ConfigError)
    assert len(worker_pids()) == 1


# ---- hooks ---------------------------------------------------------------------------


def test_first_result_stops_calling_at_the_first_value(three):
    sup, seen = three
    results = sup.hook("demo.hooks", first_result=True)
    assert [(r.plugin, r.value) for r in results] == [("a1", None), ("b2", "b")]
    assert seen == ["a1", "b2"], "an implementation after the first value ran"
    assert sup.state("c3") in (None, "stopped") and sup.calls_pending == 0
    # concurrent=True: everything runs, the list still stops at the value
    seen.clear()
    results = sup.hook("demo.hooks", first_result=True, concurrent=True)
    assert [r.value for r in results] == [None, "b"]
    sup.call("c3", "demo.hooks:impl")    # c3's queue is behind its hook call
    assert sorted(seen) == ["a1", "b2", "c3", "c3"]


def test_order_by_priority_by_name_or_as_given(three):
    sup, seen = three
    assert [r.plugin for r in sup.hook("demo.hooks", order="priority")] == ["c3", "b2", "a1"]
    assert [r.plugin for r in sup.hook("demo.hooks")] == ["a1", "b2", "c3"]
    assert [r.plugin for r in sup.hook("demo.hooks", plugins=["c3", "a1"])] == ["c3", "a1"]
    assert [r.plugin for r in sup.hook("demo.hooks", plugins=["c3", "a1"], order="name")] == ["a1", "c3"]
    seen.clear()
    assert [r.value for r in sup.hook("demo.hooks", first_result=True, order="priority")] == ["c"]
    assert seen == ["c3"]
    with pytest.raises(plugbox.NotFound, match="no plugin 'zz'"):
        sup.hook("demo.hooks", plugins=["a1", "zz"])
    with pytest.raises(ValueError, match="order"):
        sup.hook("demo.hooks", order="random")
    with pytest.raises(ValueError, match="needs plugins"):
        sup.hook("demo.hooks", order="given")


def test_an_unknown_group_is_an_error_unless_the_caller_opts_out(three):
    sup, seen = three
    with pytest.raises(plugbox.NotFound, match="no plugin declares entry-point group 'demo.hook' "
                                               r"\(did you mean 'demo.hooks'\?\)"):
        sup.hook("demo.hook")
    assert sup.hook("demo.hook", unknown_group="ignore") == []
    with pytest.raises(ValueError):
        sup.hook("demo.hooks", unknown_group="skip")
    assert seen == []


def test_pruning_passes_each_implementation_only_its_declared_keywords(scratch, supervisor):
    root = scratch / "plugins"
    _plugin(root, "named", {"impl": "named:impl"},
            body="def impl(config, *, verbose=False):\n    return [config, verbose]\n")
    _plugin(root, "kwargs", {"impl": "kwargs:impl"}, body="def impl(**kw):\n    return sorted(kw)\n")
    _plugin(root, "none", {"impl": "none:impl"}, body="def impl():\n    return 'nothing'\n")
    sup = supervisor(_readable(root))
    kw = dict(config="c", verbose=True, extra=1)
    plain = {r.plugin: r for r in sup.hook("demo.hooks", **kw)}
    assert isinstance(plain["named"].error, plugbox.PluginError) and "extra" in str(plain["named"].error)
    assert isinstance(plain["none"].error, plugbox.PluginError)
    pruned = {r.plugin: r.result() for r in sup.hook("demo.hooks", prune_kwargs=True, **kw)}
    assert pruned == {"named": ["c", True], "kwargs": ["config", "extra", "verbose"], "none": "nothing"}


def test_ahook_runs_twenty_plugins_concurrently(scratch, supervisor):
    root = scratch / "plugins"
    for i in range(20):
        _plugin(root, f"s{i:02d}", {"impl": f"s{i:02d}:impl"},
                body="import time\ndef impl(delay=0):\n    time.sleep(delay)\n    return delay\n")
    sup = supervisor(_readable(root))

    async def main(delay):
        t0 = time.monotonic()
        hook = asyncio.ensure_future(sup.ahook("demo.hooks", delay=delay))
        await asyncio.sleep(0.05)
        woke = time.monotonic() - t0          # another task ran while the hook was out
        pending = not hook.done()
        results = await hook
        return results, time.monotonic() - t0, woke, pending

    results, base, _, _ = asyncio.run(main(0))       # every worker started
    assert [r.value for r in results] == [0] * 20
    results, took, woke, pending = asyncio.run(main(1.0))
    assert [r.plugin for r in results] == [f"s{i:02d}" for i in range(20)]
    assert all(r.value == 1.0 for r in results)
    # one after another: 20 s; concurrently: about 1 s plus the overhead
    # measured without the sleep
    assert took < 1.0 + 3 * base + 2.0, f"20 plugins sleeping 1 s took {took:.2f} s (baseline {base:.2f} s)"
    assert took >= 1.0
    # the event loop was not blocked for the hook: a task sleeping 0.05 s
    # woke before any plugin could have answered (each sleeps 1 s)
    assert pending and woke < 1.0, f"the other task woke at {woke:.2f} s, the hook took {took:.2f} s"

    async def both():
        first = sup.ahook("demo.hooks", first_result=True, delay=0.1)
        every = sup.ahook("demo.hooks", plugins=["s03", "s01"])
        return await asyncio.gather(first, every)
    first, every = asyncio.run(both())
    assert [(r.plugin, r.value) for r in first] == [("s00", 0.1)]
    assert [r.plugin for r in every] == ["s03", "s01"]

    async def unknown():
        await sup.ahook("no.group")
    with pytest.raises(plugbox.NotFound):
        asyncio.run(unknown())
