"""Look for other processes: list /proc (in its own pid namespace, without
a host /proc, a worker sees no process but itself; a worker forked from its
plugin's zygote, `--spawn zygote`, shares the zygote's pid namespace and
sees that zygote and the plugin's other workers, none of another plugin or
the host's)."""

import errno
import os

import plugbox


@plugbox.export
def attack(ctx):
    try:
        pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    except OSError as e:
        return {"contained": True, "how": f"listdir('/proc') -> {errno.errorcode.get(e.errno, e.errno)}"}
    me = _argv("self")
    # Its own plugin's processes (the zygote, the other workers): the same
    # uid and the same worker arguments, which a zygote's forks inherit.
    own = [p for p in pids if p != os.getpid() and me and _uid(p) == os.getuid() and _argv(p) == me]
    others = [p for p in pids if p != os.getpid() and p not in own]
    return {"contained": not others,
            "how": f"listdir('/proc'): {len(others)} other processes {others[:8]}, the supervisor's pid "
                   f"{ctx['supervisor_pid']} {'among them' if ctx['supervisor_pid'] in others else 'not there'}"
                   + (f"; {len(own)} of its own plugin's (zygote, workers)" if own else "")}


def _argv(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return None


def _uid(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Uid:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None
