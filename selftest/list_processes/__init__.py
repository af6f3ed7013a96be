"""Look for other processes: list /proc (in its own pid namespace, without
a host /proc, a worker sees no process but itself)."""

import errno
import os

import plugbox


@plugbox.export
def attack(ctx):
    try:
        pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    except OSError as e:
        return {"contained": True, "how": f"listdir('/proc') -> {errno.errorcode.get(e.errno, e.errno)}"}
    others = [p for p in pids if p != os.getpid()]
    return {"contained": not others,
            "how": f"listdir('/proc'): {len(others)} other processes {others[:8]}, the supervisor's pid "
                   f"{ctx['supervisor_pid']} {'among them' if ctx['supervisor_pid'] in others else 'not there'}"}
