"""Supervisor.hook: one entry-point group across every plugin (the plugins of
tests/plugins/hooks: p0_broken cannot start, p1_none returns None, p2_fails
raises, p3_value has typeA entries run and zrun, p4_value typeA run and
typeB other, p5_none_group only typeB)."""

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
    assert [(r.plugin, r.name) for r in sup.hook("no.such.group") if r.ok] == []


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
    results = sup.hook("typeA", delay=5, timeout=0.5)
    by_entry = {(r.plugin, r.name): r for r in results}
    assert isinstance(by_entry["p4_value", "run"].error, plugbox.CallTimeout)
    assert isinstance(by_entry["p3_value", "run"].error, plugbox.CallTimeout)
    assert by_entry["p1_none", "run"].ok
    with pytest.raises(TypeError, match="cannot send set"):
        sup.hook("typeA", {1})
