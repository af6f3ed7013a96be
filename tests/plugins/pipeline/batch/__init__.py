"""batch: calls written ahead to one worker (pipelined): a counter that shows
which worker ran a call and in what order, a crash in the middle of a
batch, sleeps and spins for time limits, output printed before answers
(and a flood of it), and host calls (answered later, or calling back in)
while calls wait behind."""

import ctypes
import itertools
import time

import plugbox

_counter = itertools.count(1)


@plugbox.export
def seq(x=None):
    """[how many seq calls this worker has run, x]"""
    return [next(_counter), x]


@plugbox.export
def echo(x):
    return x


@plugbox.export
def crash():
    # pid 1 of its namespace ignores signals it sends itself; a fault kills
    ctypes.string_at(0)


@plugbox.export
def sleep(s):
    time.sleep(s)
    return s


@plugbox.export
def spin():
    while True:
        pass


@plugbox.export
def shout(i):
    print(f"line {i}")
    return i


@plugbox.export
def ask_later():
    return plugbox.host.later()


@plugbox.export
def nested(n):
    # the host's "recurse" calls nested(n - 1) back in this worker
    if n == 0:
        return "bottom"
    return plugbox.host.recurse(n)


@plugbox.export
def flood(nbytes):
    """Print nbytes in lines of 100 (far more than a pipe holds), then answer."""
    line = "x" * 99
    for _ in range(nbytes // 100):
        print(line)
    return nbytes
