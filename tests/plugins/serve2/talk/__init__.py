"""talk: what tests/integration/test_serve_v2.py asks of a plugin behind
`plugbox serve` (protocol 2): output and log records attributed to the
call that made them, host functions offered by a client, nested calls and
cancellation."""

import logging
import sys
import time

import plugbox

log = logging.getLogger("talk.log")


@plugbox.export
def say(tag, n=3, pause=0.0):
    """n lines on stdout, one on stderr, one log record, all naming tag."""
    for i in range(n):
        print(f"{tag} line {i}", flush=True)
        if pause:
            time.sleep(pause)
    print(f"{tag} on stderr", file=sys.stderr)
    log.warning("%s logged", tag)
    return tag


@plugbox.export
def sleep(seconds, tag=None):
    time.sleep(seconds)
    return tag


@plugbox.export
def sleep_noting(seconds):
    """Sleeps; if it is interrupted, says so on stdout (and re-raises)."""
    try:
        time.sleep(seconds)
    except BaseException as e:
        print(f"interrupted by {type(e).__name__}", flush=True)
        raise
    return "slept"


@plugbox.export
def ask(name, *args):
    return plugbox.host_call(name, *args)


@plugbox.export
def ask_safely(name, *args):
    try:
        return ["ok", plugbox.host_call(name, *args)]
    except Exception as e:
        return [type(e).__name__, str(e)]


@plugbox.export
def nested(n):
    # The client's host function "recurse" calls nested(n - 1) back,
    # nested in its host call, in this same worker.
    if n == 0:
        return "bottom"
    return [n, plugbox.host.recurse(n)]


@plugbox.export
def echo(x):
    return x


LAST = []


@plugbox.export
def ask_and_keep(name):
    """A host call whose end is kept for last(): its client may be gone.

    A client that goes away fails its host call and cancels the call, one
    right after the other. The Cancelled is asynchronous (a signal, like
    KeyboardInterrupt): it may land in the host call, or after it failed,
    inside the handler below before the handler has kept anything. So the
    outer handler keeps whichever exception got out if nothing was kept:
    a call gets at most one Cancelled, so it cannot land there too."""
    outcome = []
    LAST.append(outcome)
    try:
        try:
            outcome.append(["ok", plugbox.host_call(name)])
        except BaseException as e:
            outcome.append([type(e).__name__, str(e)])
            raise
    except BaseException as e:
        if not outcome:
            outcome.append([type(e).__name__, str(e)])
        raise
    return outcome[0]


@plugbox.export
def last():
    """The first end ask_and_keep kept in this worker's last call of it."""
    return LAST[-1][0] if LAST and LAST[-1] else None


@plugbox.export
def spew(seconds, width=1000):
    """Lines of `width` bytes for `seconds`: as fast as the meter lets them
    through (256 KiB a second), to a client that may not be reading."""
    line = "x" * width
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        print(line)
        n += 1
    return n


@plugbox.export
def ask_big(name, size):
    """A host call whose one argument is a str of size bytes, made here:
    the client's own frame could not carry it in."""
    try:
        return ["ok", plugbox.host_call(name, "x" * size)]
    except Exception as e:
        return [type(e).__name__, str(e)]


@plugbox.export
def fail_big(size):
    """Raises an exception whose message is size bytes."""
    raise ValueError("x" * size)


@plugbox.export
def fail_big_type(size):
    """Raises an exception whose class name is about size bytes: "T", then é."""
    raise type("T" + "\u00e9" * (size // 2), (ValueError,), {})("boom")
