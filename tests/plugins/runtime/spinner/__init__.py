"""spinner: a plugin that hangs, sleeps or dies on request, beside one
that answers, for deadlines, cancellation and restarts."""

import ctypes
import os
import time

import plugbox


@plugbox.export
def spin():
    while True:
        pass


@plugbox.export
def ok():
    return "ok"


@plugbox.export
def crash():
    # The worker is pid 1 of its pid namespace: the kernel drops signals it
    # sends itself (kill(getpid(), SIGKILL) included) while no handler is
    # set. A fault is different: the kernel forces SIGSEGV and it kills.
    ctypes.string_at(0)


@plugbox.export
def sleep(s):
    time.sleep(s)
    return s


@plugbox.export
def pid():
    return os.getpid()
