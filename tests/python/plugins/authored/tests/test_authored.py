"""The `authored` plugin's own tests: run inside its worker by
plugbox.pytest (tests/python/test_pytest_plugin.py checks each outcome)."""

import asyncio
import ctypes
import os
import socket
import sys
import unittest

import authored
import tinydep
from authored import add


_state = {}


def setup_function(function):
    _state["set up for"] = function.__name__


def test_add():
    assert add(1, 2) == 3


def test_add_wrong():
    assert add(1, 2) == 4


def test_vendored_dep_is_importable():
    assert authored.greeting("ann") == "hello from tinydep, ann"
    assert tinydep.__file__.endswith("/authored/deps/tinydep/__init__.py"), tinydep.__file__


def test_host_only_package():
    import pytest  # noqa: F401  (the host has it; the plugin does not vendor it)


def test_nothing_from_the_host_on_sys_path():
    for entry in sys.path:
        assert "site-packages" not in entry and "dist-packages" not in entry, sys.path


def test_ptrace_the_parent():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    print("[about to call ptrace]", flush=True)
    # PTRACE_SEIZE (0x4206) of the parent, as raw syscall 101 (x86_64)
    libc.syscall(ctypes.c_long(101), ctypes.c_long(0x4206), ctypes.c_long(os.getppid()),
                 ctypes.c_long(0), ctypes.c_long(0))


def test_connect_out():
    socket.socket(socket.AF_INET, socket.SOCK_STREAM).connect(("192.0.2.1", 80))


def test_after_the_kill():
    assert add(2, 2) == 4


def test_skipped():
    raise unittest.SkipTest("not on this platform")


@unittest.expectedFailure
def test_known_bug():
    assert add(0.1, 0.2) == 0.3


async def test_async():
    await asyncio.sleep(0)
    assert add("a", "b") == "ab"


def test_wants_a_fixture(tmp_path):
    pass


def test_terminal_escapes():
    assert False, "\x1b[2Jcleared the screen"


def test_setup_function_ran():
    assert _state["set up for"] == "test_setup_function_ran"


class TestClass:
    def setup_method(self, method):
        self.base = 10

    def test_method(self):
        assert add(self.base, 1) == 11

    def test_in(self):
        assert "z" in ["x", "y"], "no z"


class TestCase(unittest.TestCase):
    def test_equal(self):
        self.assertEqual(add(1, 1), 2)

    def test_not_equal(self):
        self.assertEqual(add(1, 1), 3)
