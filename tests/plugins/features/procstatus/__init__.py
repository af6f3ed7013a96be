"""procstatus: what the sandbox looks like from inside the worker.

The snapshot is taken twice: by this module's top-level code (the first plugin
code that runs, so every sandbox layer must already be in place) and again
during a call. Only syscalls a plain import already makes are used here."""

import os
import stat

import plugbox

_STATUS_KEYS = ("Seccomp", "NoNewPrivs", "CapEff", "CapPrm", "Uid", "Gid")


def _kind(mode):
    for test, name in ((stat.S_ISFIFO, "fifo"), (stat.S_ISCHR, "chr"),
                       (stat.S_ISSOCK, "sock"), (stat.S_ISREG, "reg"),
                       (stat.S_ISDIR, "dir")):
        if test(mode):
            return name
    return "other"


def _snapshot():
    with open("/proc/self/status") as f:
        lines = {}
        for line in f:
            key = line.split(":", 1)[0]
            if key in _STATUS_KEYS:
                lines[key] = line.rstrip("\n")
    # The listing itself uses a directory descriptor that shows up in it and
    # is closed again when listdir returns: keep only descriptors still open.
    listed = sorted(int(name) for name in os.listdir("/proc/self/fd"))
    fds = []
    for fd in listed:
        try:
            st = os.fstat(fd)
        except OSError:
            continue
        entry = [fd, _kind(st.st_mode)]
        if stat.S_ISCHR(st.st_mode):
            entry.append([os.major(st.st_rdev), os.minor(st.st_rdev)])
        fds.append(entry)
    return {"status": lines, "fds": fds, "uid": os.getuid(), "euid": os.geteuid()}


AT_IMPORT = _snapshot()


@plugbox.export
def at_import():
    return AT_IMPORT


@plugbox.export
def now():
    return _snapshot()


@plugbox.export
def read_stdin():
    return os.read(0, 4096).decode("utf-8", "replace")
