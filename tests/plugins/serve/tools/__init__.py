"""tools: what tests/integration/test_serve.py asks of a plugin behind
`plugbox serve`: echo, raise, sleep, large results, keyword arguments."""

import time

import plugbox


@plugbox.export
def echo(x):
    return x


@plugbox.export
def boom(message):
    raise ValueError(message)


@plugbox.export
def sleep(seconds, tag=None):
    time.sleep(seconds)
    return tag


@plugbox.export
def big(n):
    return "x" * n


@plugbox.export
def kw(a, b=0):
    return [a, b]
