"""Kill the sibling plugin's worker with SIGKILL (the runner then sees the
sibling gone or restarted)."""

import errno
import os
import signal

import plugbox


@plugbox.export
def attack(ctx):
    pid = ctx["sibling_pid"]
    if pid <= 0:
        return {"contained": False, "how": "the runner did not find the sibling's pid: attempt not made"}
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError as e:
        return {"contained": True, "how": f"kill({pid}, SIGKILL) -> {errno.errorcode.get(e.errno, e.errno)}"}
    return {"contained": False, "how": f"kill({pid}, SIGKILL) killed the sibling"}
