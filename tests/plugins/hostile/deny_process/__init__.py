"""Attack: create processes or replace the worker with another program
(escape the filter's bookkeeping, fork bombs, run a shell)."""

import os
import subprocess

import plugbox


def _attempt(action):
    try:
        value = action()
    except OSError as e:
        return {"type": type(e).__name__, "errno": e.errno}
    return {"type": None, "errno": 0, "value": value}


def _fork():
    pid = os.fork()
    if pid == 0:
        os._exit(0)  # only reached if the sandbox let the fork through
    os.waitpid(pid, 0)
    return pid


@plugbox.export
def fork():
    return _attempt(_fork)


@plugbox.export
def run_subprocess():
    return _attempt(lambda: subprocess.run(["/bin/true"]).returncode)


@plugbox.export
def system():
    return {"status": os.system("/bin/true")}


@plugbox.export
def execv():
    # If this worked, the worker would become /bin/true and the call would
    # never return a result.
    return _attempt(lambda: os.execv("/bin/true", ["true"]))


@plugbox.export
def posix_spawn():
    return _attempt(lambda: os.posix_spawn("/bin/true", ["true"], {}))
