"""busy: reports, from inside its worker, when each call ran and in which
worker, and refuses to run two calls at once in one worker (a per-worker
busy flag), for the replica tests (tests/integration/test_replicas.py) and
the replica figures of `make bench`."""

import os
import time

import plugbox

_busy = False
_worker = None


def _me():
    # Made at the first call, not at import: under --spawn zygote the
    # import ran once, in the zygote, for every child.
    global _worker
    if _worker is None:
        _worker = f"{os.getpid()}-{os.urandom(8).hex()}"
    return _worker


@plugbox.export
def work(seconds, tag):
    global _busy
    if _busy:
        raise RuntimeError(f"worker {_me()} got call {tag} while it ran another")
    _busy = True
    try:
        start = time.monotonic()
        time.sleep(seconds)
        return {"worker": _me(), "tag": tag, "start": start, "end": time.monotonic()}
    finally:
        _busy = False


@plugbox.export
def spin(n):
    # CPU-bound: a loop of n steps in pure Python.
    total = 0
    for i in range(n):
        total += i * i
    return total


@plugbox.export
def crash():
    os._exit(7)
