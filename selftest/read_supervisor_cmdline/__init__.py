"""Read the supervisor's command line from /proc/PID/cmdline with pathlib."""

import errno
import pathlib

import plugbox


@plugbox.export
def attack(ctx):
    path = pathlib.Path("/proc", str(ctx["supervisor_pid"]), "cmdline")
    try:
        data = path.read_bytes()
    except OSError as e:
        return {"contained": True, "how": f"read_bytes('{path}') -> {errno.errorcode.get(e.errno, e.errno)}"}
    return {"contained": not data, "how": f"read_bytes('{path}') -> {data[:120]!r}"}
