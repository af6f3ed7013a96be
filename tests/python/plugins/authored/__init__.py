"""A plugin as its author writes it, with its own test suite (tests/) and a
vendored dependency (deps/tinydep), for plugbox.pytest's tests
(tests/python/test_pytest_plugin.py): the tests under tests/ run inside
this plugin's worker."""

__deps_dir__ = "deps"

import tinydep


def add(a, b):
    return a + b


def greeting(name):
    return f"{tinydep.HELLO}, {name}"
