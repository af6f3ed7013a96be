"""A framework learns that a plugin was installed, upgraded or removed
(issue 22 item 8): Supervisor.generation and Supervisor.on_change, over
pb_supervisor_generation and the change callback, with the real installer."""

import os
import subprocess

import pytest

import plugbox
from pbpy import catch_unraisable


def _plugbox(*args):
    cp = subprocess.run([os.environ["PLUGBOX"], *map(str, args)], capture_output=True, text=True, timeout=120)
    assert cp.returncode == 0, cp.stderr
    return cp


def test_install_upgrade_and_remove_are_counted_and_reported(supervisor, paths, copy_plugins):
    plugins = copy_plugins({"echo": paths.features / "echo"})
    sup = supervisor(plugins)
    seen = []
    assert sup.on_change(lambda plugin, change: seen.append((plugin, change))) is not None
    start = sup.generation
    assert sup.generation == start                       # nothing changed: reading changes nothing
    assert sup.call("echo", "echo", 1) == 1

    _plugbox("install", "--plugins", plugins, "--name", "fresh", paths.features / "echo")
    assert sup.generation == start + 1
    assert seen == [("fresh", "installed")]

    _plugbox("install", "--plugins", plugins, "--name", "fresh", paths.features / "echo")
    assert sup.generation == start + 2
    assert seen[1:] == [("fresh", "upgraded")]
    assert sup.call("fresh", "echo", "new") == "new"     # served from the new directory

    _plugbox("remove", "--plugins", plugins, "fresh")
    assert sup.generation == start + 3
    assert seen[2:] == [("fresh", "removed")]


def test_the_callback_runs_as_the_loop_runs(supervisor, paths, copy_plugins):
    """Without reading generation: a call's loop notices the change too."""
    plugins = copy_plugins({"echo": paths.features / "echo"})
    sup = supervisor(plugins)
    seen = []
    sup.on_change(lambda plugin, change: seen.append((plugin, change)))
    _plugbox("install", "--plugins", plugins, "--name", "other", paths.features / "echo")
    assert sup.call("echo", "echo", 2) == 2
    assert seen == [("other", "installed")]
    sup.on_change(None)
    _plugbox("remove", "--plugins", plugins, "other")
    before = len(seen)
    sup.generation
    assert len(seen) == before                            # no callback any more


def test_entries_that_are_not_plugins_and_edits_inside_one_are_not_changes(supervisor, paths, copy_plugins):
    plugins = copy_plugins({"echo": paths.features / "echo"})
    sup = supervisor(plugins)
    start = sup.generation
    (plugins / "not.a.plugin").mkdir()
    (plugins / ".hidden").mkdir()
    (plugins / "echo" / "notes.txt").write_text("edited in place")
    assert sup.generation == start
    (plugins / "made_by_hand").mkdir()                   # any new plugin directory counts
    assert sup.generation == start + 1


def test_the_callback_may_not_call_the_supervisor(supervisor, paths, copy_plugins):
    plugins = copy_plugins({"echo": paths.features / "echo"})
    sup = supervisor(plugins)
    sup.on_change(lambda plugin, change: sup.call(plugin, "echo", 1))
    (plugins / "again").mkdir()
    with catch_unraisable() as seen:
        assert sup.generation >= 1
    assert seen and isinstance(seen[0].exc_value, RuntimeError)
    assert "change callback must not call the supervisor" in str(seen[0].exc_value)
    with pytest.raises(TypeError):
        sup.on_change(42)
    assert isinstance(sup, plugbox.Supervisor)
