"""Supervisor.hook: one entry-point group across every plugin (the plugins of
tests/plugins/hooks: p0_broken cannot start, p1_none returns None, p2_fails
raises, p3_value has typeA entries run and zrun, p4_value typeA run and
typeB other, p5_none_group only typeB)."""

import os
import time

import pytest

import plugbox


@pytest.fixture
def sup(supervisor, paths):
    return supervisor(paths.hooks)


def test_every_plugin_of_the_group_answers_in_a_fixed_order(sup):
    results = sup.hook("typeA", 1, "two")
    assert [(r.plugin, r.name) for r in results] == [
        ("p0_broken", ""), ("p1_none", "run"), ("p2_fails", "run"),
        ("p3_value", "run"), ("p3_value", "zrun"), ("p4_value", "run")]
    broken, none, fails, run, zrun, p4 = results
    assert isinstance(broken.error, plugbox.ConfigError) and not broken.ok and broken.value is None
    assert none.ok and none.value is None and none.result() is None
    assert isinstance(fails.error, plugbox.PluginError)
    assert str(fails.error) == "ValueError: p2_fails refuses"
    with pytest.raises(plugbox.PluginError, match="p2_fails refuses"):
        fails.result()
    assert run.value == {"plugin": "p3_value", "entry": "run", "args": [1, "two"]}
    assert zrun.value == {"plugin": "p3_value", "entry": "zrun", "args": [1, "two"]}
    assert p4.result() == {"plugin": "p4_value", "entry": "run", "args": [1, "two"]}
    assert all(isinstance(r, plugbox.HookResult) for r in results)


def test_another_group_and_a_group_nobody_provides(sup):
    assert [(r.plugin, r.name, r.value) for r in sup.hook("typeB") if r.ok] == [
        ("p4_value", "other", "p4_value typeB"), ("p5_none_group", "other", "p5 typeB")]
    assert [(r.plugin, r.name) for r in sup.hook("no.such.group", unknown_group="ignore") if r.ok] == []


def test_first_result_stops_at_the_first_value(sup):
    results = sup.hook("typeA", first_result=True)
    assert [(r.plugin, r.name) for r in results] == [
        ("p0_broken", ""), ("p1_none", "run"), ("p2_fails", "run"), ("p3_value", "run")]
    assert results[-1].value["entry"] == "run"


def test_plugins_are_called_concurrently(sup):
    sup.hook("typeA")    # every worker started
    t0 = time.monotonic()
    results = sup.hook("typeA", delay=0.5)
    elapsed = time.monotonic() - t0
    assert [r.name for r in results if r.ok and r.value] == ["run", "zrun", "run"]
    # p3_value's two entries run one after the other in its worker (1 s),
    # p4_value's beside them; one after another they would take 1.5 s
    assert 1.0 <= elapsed < 1.45, f"took {elapsed:.2f} s"


def test_a_timeout_fails_the_slow_entries_alone(sup):
    # Workers up first: a hook's calls, like call()'s, count a worker's
    # start against their deadline, and only providers start now.
    sup.hook("typeA")
    results = sup.hook("typeA", delay=5, _timeout=0.5)
    by_entry = {(r.plugin, r.name): r for r in results}
    assert isinstance(by_entry["p4_value", "run"].error, plugbox.CallTimeout)
    assert isinstance(by_entry["p3_value", "run"].error, plugbox.CallTimeout)
    assert by_entry["p1_none", "run"].ok
    with pytest.raises(TypeError, match="cannot send set"):
        sup.hook("typeA", {1})


def _entry_point_plugin(root, name, count, group="typeA"):
    """A path-layout plugin whose entry_points.txt declares `count` entry
    points of `group`, all to one function."""
    (root / name / name).mkdir(parents=True)
    (root / name / name / "__init__.py").write_text("def run(*args):\n    return 'ran'\n")
    info = root / name / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[{group}]\n" + "".join(f"e{i:06d} = {name}:run\n" for i in range(count)))
    for path in [root, *root.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    return root


def _cpu_of(fn):
    """fn() and the CPU time this process (the supervisor, not its
    workers) spent on it."""
    import resource
    before = resource.getrusage(resource.RUSAGE_SELF)
    out = fn()
    after = resource.getrusage(resource.RUSAGE_SELF)
    return out, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def test_entry_points_are_bounded_and_cheap_for_the_supervisor(supervisor, scratch):
    """100,000 entry points in one plugin's entry_points.txt once cost the
    supervisor 17.7 s of CPU (a quadratic de-duplication). Beyond
    PB_ENTRY_POINTS_MAX (1024) the plugin does not start, with a
    configuration error naming the limit, at the cost of a small plugin."""
    few = supervisor(_entry_point_plugin(scratch / "few", "few", 10))
    results, base = _cpu_of(lambda: few.hook("typeA"))
    assert [r.value for r in results] == ["ran"] * 10
    many = supervisor(_entry_point_plugin(scratch / "many", "many", 100_000))
    results, cost = _cpu_of(lambda: many.hook("typeA"))
    assert cost < 5 * base + 0.25, f"the supervisor spent {cost:.2f} s of CPU (a 10-entry plugin: {base:.2f} s)"
    assert [(r.plugin, r.name) for r in results] == [("many", "")]
    assert isinstance(results[0].error, plugbox.ConfigError)
    assert "declares more than 1024 entry points" in str(results[0].error)
    # The limit itself is allowed, and duplicate names answer once.
    edge = _entry_point_plugin(scratch / "edge", "edge", 1000)
    with open(edge / "edge" / "edge-1.0.dist-info" / "entry_points.txt", "a") as f:
        f.write("[typeB]\n" + "".join(f"b{i} = edge:run\n" for i in range(24)))
    results = supervisor(edge).hook("typeA")
    assert len(results) == 1000 and all(r.ok for r in results)
    assert [r.name for r in results] == sorted(r.name for r in results)
    over = _entry_point_plugin(scratch / "over", "over", 1025)
    assert isinstance(supervisor(over).hook("typeA")[0].error, plugbox.ConfigError)


# A plugin that writes its own Hello on the replies descriptor (4) at import
# time, before the glue's, listing 100,000 entry points of group typeA.
# Imported before Hello only under a policy with @after-start rules.
FORGED_HELLO = r'''
import os

def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7f
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)

def _field(number, data):
    return _varint(number << 3 | 2) + _varint(len(data)) + data

_eps = b"".join(_field(6, _field(1, b"typeA") + _field(2, b"e%06d" % i) + _field(3, b"forger:run"))
                for i in range(100_000))
_hello = b"\x08\x01" + _field(2, b"forger") + _field(3, b"package") + _field(4, b"") + _eps
_env = _field(2, _hello)
_frame = len(_env).to_bytes(4, "little") + _env
_view = memoryview(_frame)
while _view:
    _view = _view[os.write(4, _view):]

def run(*args):
    return "ran"
'''


def test_a_forged_hello_with_too_many_entry_points_ends_the_worker(supervisor, scratch, policies):
    """The supervisor bounds what it accepts itself: a Hello listing more
    than 1024 entry points ends that worker with a protocol error, whatever
    the plugin's own code wrote, and costs the supervisor about what
    decoding as much data costs (the baseline: a result of 100,000 strings),
    not the 17.7 s a quadratic pass over the names once did."""
    bulk_dir = _entry_point_plugin(scratch / "bulk", "bulk", 1)
    (bulk_dir / "bulk" / "bulk" / "__init__.py").write_text(
        "def run(*args):\n    return ['e%06d' % i for i in range(100_000)]\n")
    bulk = supervisor(bulk_dir)
    bulk.hook("typeA")                      # the worker started
    results, base = _cpu_of(lambda: bulk.hook("typeA"))
    assert len(results[0].value) == 100_000
    (scratch / "forged" / "forger").mkdir(parents=True)
    (scratch / "forged" / "forger" / "__init__.py").write_text(FORGED_HELLO)
    for path in [scratch / "forged", *(scratch / "forged").rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    forged = supervisor(scratch / "forged", policies({"forger": "@include strict\n"}))
    forged.set_restart(max_crashes=1)       # one forged Hello, not a crash loop of them
    # Its metadata declares no entry point (hooks go by the discovery
    # scan, which never runs plugin code): only its worker forges one.
    assert forged.hook("typeA", unknown_group="ignore") == []

    def describe():
        with pytest.raises(plugbox.ProtocolError) as e:
            forged.describe("forger")
        return e.value
    error, cost = _cpu_of(describe)
    assert cost < 5 * base + 0.1, f"the supervisor spent {cost:.2f} s of CPU on the forged Hello " \
                                  f"(decoding 100,000 strings of a result: {base:.2f} s)"
    assert "hello with 100000 entry points, more than 1024" in str(error), error
