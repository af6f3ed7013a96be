"""Warm start (issue 22 item 5): Supervisor.start() and serve --eager have
the worker import the plugin, and Supervisor.warm() does it on demand, so
that the first call does not pay for the plugin's imports. slowimport
sleeps 3 s at import: a warmed worker's first call is measured against a
cold worker's in the same test."""

import time

import pytest

import plugbox
from pbpy import TEST_TIMEOUT, wait_until


def _first_call_seconds(sup):
    start = time.monotonic()
    assert sup.call("slowimport", "ping") == "pong"
    return time.monotonic() - start


def test_start_imports_the_plugin(supervisor, paths):
    cold = supervisor(paths.features)
    cold_seconds = _first_call_seconds(cold)             # start + 3 s of import
    assert cold_seconds >= 3

    warm = supervisor(paths.features)
    warm.start("slowimport")
    # The worker imports as its first call: wait until that call is over.
    assert warm.calls_pending == 1
    assert wait_until(lambda: warm.dispatch(0.1) >= 0 and warm.calls_pending == 0, TEST_TIMEOUT)
    assert warm.state("slowimport") == "ready"
    assert _first_call_seconds(warm) < cold_seconds / 3


def test_warm_on_demand(supervisor, paths):
    sup = supervisor(paths.features)
    start = time.monotonic()
    assert sup.warm("slowimport") is None
    assert time.monotonic() - start >= 3                 # the import happened here ...
    assert _first_call_seconds(sup) < 1.5                # ... and not in the first call
    assert sup.warm("slowimport") is None                # again: nothing left to import


def test_warm_raises_the_plugins_import_error(supervisor, paths):
    sup = supervisor(paths.features)
    with pytest.raises(plugbox.PluginError):
        sup.warm("brokenimport")
    with pytest.raises(plugbox.NotFound):
        sup.warm("nosuchplugin")
