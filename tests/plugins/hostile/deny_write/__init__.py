"""Attack: write to the file system (plant files, poison other plugins).
Each function makes one attempt and returns what happened, so the test can
check both the error and that nothing changed on disk."""

import os

import plugbox


def _attempt(action):
    try:
        action()
    except OSError as e:
        return {"type": type(e).__name__, "errno": e.errno}
    return {"type": None, "errno": 0}


def _open(path, mode):
    def action():
        with open(path, mode) as f:
            f.write("pwned by deny_write\n")
    return action


@plugbox.export
def create(path):
    return _attempt(_open(path, "w"))


@plugbox.export
def append(path):
    return _attempt(_open(path, "a"))


@plugbox.export
def update(path):
    return _attempt(_open(path, "r+"))


@plugbox.export
def mkdir(path):
    return _attempt(lambda: os.mkdir(path))


@plugbox.export
def unlink(path):
    return _attempt(lambda: os.unlink(path))


@plugbox.export
def rename(src, dst):
    return _attempt(lambda: os.rename(src, dst))


@plugbox.export
def own_source():
    """Rewrite this plugin's own code (persistence across calls)."""
    return _attempt(_open(__file__, "a"))


@plugbox.export
def proc_self_mem():
    """Open the worker's own memory read-write (code injection into itself)."""
    return _attempt(_open("/proc/self/mem", "r+b"))
