"""procstatus: what the sandbox looks like from inside the worker.

The snapshot is taken twice: by this module's top-level code (the first plugin
code that runs, so every sandbox layer must already be in place) and again
during a call. Descriptors are found by fstat() over the whole range the files
limit allows, which needs no /proc. Its seccomp and capability
state is read from outside (test_sandbox.py) while `hold` keeps it busy."""

import os
import stat
import time

import plugbox


def _kind(mode):
    for test, name in ((stat.S_ISFIFO, "fifo"), (stat.S_ISCHR, "chr"),
                       (stat.S_ISSOCK, "sock"), (stat.S_ISREG, "reg"),
                       (stat.S_ISDIR, "dir")):
        if test(mode):
            return name
    return "other"


def _snapshot():
    fds = []
    for fd in range(0, 1024):
        try:
            st = os.fstat(fd)
        except OSError:
            continue
        entry = [fd, _kind(st.st_mode)]
        if stat.S_ISCHR(st.st_mode):
            entry.append([os.major(st.st_rdev), os.minor(st.st_rdev)])
        fds.append(entry)
    return {"fds": fds, "uid": os.getuid(), "euid": os.geteuid(), "pid": os.getpid(),
            "proc_visible": os.path.exists("/proc/self")}


def _caps():
    """The capability sets as the kernel reports them to this process."""
    with open("/proc/self/status") as f:
        return {k: v.strip() for k, _, v in (line.partition(":") for line in f) if k.startswith("Cap")}


AT_IMPORT = _snapshot()
CAPS_AT_IMPORT = _caps()


@plugbox.export
def at_import():
    return AT_IMPORT


@plugbox.export
def caps():
    """Capability sets at import (the first plugin code) and now."""
    return {"at_import": CAPS_AT_IMPORT, "now": _caps()}


@plugbox.export
def now():
    return _snapshot()


@plugbox.export
def hold(seconds):
    """Stay in a call, so the test can look at this worker from outside."""
    time.sleep(seconds)
    return True


@plugbox.export
def read_stdin():
    return os.read(0, 4096).decode("utf-8", "replace")
