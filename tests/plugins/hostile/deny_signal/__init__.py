"""Attack: signal other processes (the supervisor, other plugins, everyone).
Only signal 0 (a probe) is sent to the parent and to -1; the decoy, a process
the test started for this purpose, gets a real SIGTERM."""

import os
import signal

import plugbox


def _attempt(pid, sig):
    try:
        os.kill(pid, sig)
    except OSError as e:
        return {"type": type(e).__name__, "errno": e.errno}
    return {"type": None, "errno": 0}


@plugbox.export
def kill_parent():
    return _attempt(os.getppid(), 0)


@plugbox.export
def kill_everyone():
    return _attempt(-1, 0)


@plugbox.export
def kill_decoy(pid):
    return _attempt(pid, signal.SIGTERM)
