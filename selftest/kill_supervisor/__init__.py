"""Signal the supervisor: SIGURG, which it ignores by default (harmless if
it arrives), and which the runner counts so a delivery cannot go unseen."""

import errno
import os
import signal

import plugbox


@plugbox.export
def attack(ctx):
    pid = ctx["supervisor_pid"]
    try:
        os.kill(pid, signal.SIGURG)
    except OSError as e:
        return {"contained": True, "how": f"kill({pid}, SIGURG) -> {errno.errorcode.get(e.errno, e.errno)}"}
    return {"contained": False, "how": f"kill({pid}, SIGURG) delivered to the supervisor"}
