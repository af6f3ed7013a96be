"""nodetools: what clients/node/test asks of a plugin behind `plugbox serve`
beyond tests/plugins/serve/tools (echo, boom, sleep): values and their
Python types, keyword arguments, output and log records, state kept
between calls, and host functions offered by the Node client."""

import logging
import sys
import time

import plugbox

log = logging.getLogger("nodetools")


@plugbox.export
def echo(*args):
    return args[0] if len(args) == 1 else list(args)


@plugbox.export
def types(*args):
    """The Python type of each argument, to check what the client sent."""
    return [type(a).__name__ for a in args]


@plugbox.export
def kw(a, b=0, **rest):
    return {"a": a, "b": b, "rest": rest}


@plugbox.export
def square(n):
    return n * n


@plugbox.export
def chatty(tag):
    print(f"out {tag}", flush=True)
    print(f"err {tag}", file=sys.stderr, flush=True)
    log.warning("log %s", tag)
    return tag


@plugbox.export
def host_add(a, b):
    return plugbox.host.add(a, b)


@plugbox.export
def host_ask(name, *args):
    return plugbox.host_call(name, *args)


@plugbox.export
def countdown(n):
    # The host's "again" calls countdown(n - 1) back: a call nested in a host call.
    if n == 0:
        return ["bottom"]
    return [n] + plugbox.host.again(n - 1)


MARKS = []


@plugbox.export
def mark(tag):
    MARKS.append(tag)
    return len(MARKS)


@plugbox.export
def marks():
    return MARKS


@plugbox.export
def sleep_noting(seconds):
    """Says it started, sleeps; the start line tells a test the call runs."""
    print("sleeping", flush=True)
    time.sleep(seconds)
    return "slept"


@plugbox.export
def print_later(seconds, text):
    """Prints text from a thread after the call has returned: output
    outside any call."""
    import threading

    def later():
        time.sleep(seconds)
        print(text, flush=True)
    threading.Thread(target=later, daemon=True).start()
    return True


KEPT = []


@plugbox.export
def host_keep(name):
    """A host call whose outcome is kept for kept(): its client may be gone."""
    try:
        got = ["ok", plugbox.host_call(name)]
    except BaseException as e:  # plugbox.Cancelled too, which is re-raised
        KEPT.append([type(e).__name__, str(e)])
        raise
    KEPT.append(got)
    return got


@plugbox.export
def kept():
    return KEPT
