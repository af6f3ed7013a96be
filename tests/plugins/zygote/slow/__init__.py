"""slow: a plugin whose import takes 300 ms (a stand-in for real
dependencies), which reports what a worker forked from its zygote inherited
(tests/integration/test_zygote.py)."""

import os
import random
import threading
import time

import plugbox

time.sleep(0.3)

# A thread started at import time: it runs in the zygote, and must not be
# in any of the zygote's children (a fork copies only the forking thread).
_ticker = threading.Thread(target=lambda: time.sleep(3600), name="import-time", daemon=True)
_ticker.start()

# Taken at import time, in the zygote: every child has this same value.
IMPORTED_AT = random.random()

_secret = None


@plugbox.export
def ping():
    return "pong"


@plugbox.export
def probe():
    """What this worker is: its randomness, descriptors, threads, and
    whether the import lock and logging work after the fork."""
    import json  # noqa: F401  (a fresh import: the import lock is free)
    import logging
    logging.getLogger("slow").info("probe")
    return {
        "random": random.random(),
        "urandom": os.urandom(8).hex(),
        "imported_at": IMPORTED_AT,
        "fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd")),
        "threads": sorted(t.name for t in threading.enumerate()),
        "tasks": len(os.listdir("/proc/self/task")),
        "pid": os.getpid(),
    }


@plugbox.export
def leftovers():
    """What the fork-server's rehearsal (worker/bootstrap.py's rehearse())
    touches, as this worker sees it: it must see what an exec'd one does."""
    import sys
    import _plugbox_worker as glue
    return {
        "urllib": "urllib" in sys.modules,
        "exports": sorted(plugbox._exports),
        "cache_tag": sys.implementation.cache_tag,
        "meta_path": [type(finder).__name__ for finder in sys.meta_path],
        "path_hooks": len(sys.path_hooks),
        "sys_path": len(sys.path),
        "state": glue._state.get("name"),
        "exported": sorted(str(k) for k in glue._exported),
    }


def _errno_of(fn):
    try:
        pid = fn()
    except OSError as e:
        return e.errno
    if pid == 0:
        os._exit(0)
    return 0


@plugbox.export
def try_fork():
    """os.fork, and fork(2) through ctypes (glibc's clone): each errno."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)

    def raw():
        pid = libc.fork()
        if pid < 0:
            raise OSError(ctypes.get_errno(), "fork")
        return pid
    return {"os.fork": _errno_of(os.fork), "ctypes fork": _errno_of(raw)}


@plugbox.export
def threads_work():
    """Threads are still allowed in a child."""
    out = []
    t = threading.Thread(target=lambda: out.append(1))
    t.start()
    t.join()
    return out == [1]


@plugbox.export
def remember(secret):
    global _secret
    _secret = secret
    return True


@plugbox.export
def recall():
    return _secret


@plugbox.export
def exit_worker():
    os._exit(0)
