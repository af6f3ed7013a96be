"""Make a new process with os.fork (the child would outlive the call and
escape the deadline)."""

import errno
import os

import plugbox


@plugbox.export
def attack(ctx):
    try:
        pid = os.fork()
    except OSError as e:
        return {"contained": True, "how": f"os.fork() -> {errno.errorcode.get(e.errno, e.errno)}"}
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return {"contained": False, "how": f"os.fork() made process {pid}"}
