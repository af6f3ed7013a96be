"""crasher: the worker dies in the middle of a call."""

import ctypes
import os

import plugbox


@plugbox.export
def exit_now(code):
    os._exit(code)


@plugbox.export
def abort():
    os.abort()


@plugbox.export
def segfault():
    ctypes.string_at(0)
