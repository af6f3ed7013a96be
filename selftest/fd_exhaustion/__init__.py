"""Exhaust descriptors (os.dup until it fails, capped at 4096): a limit on
open files must stop it well before the cap."""

import errno
import os

import plugbox

CAP = 4096


@plugbox.export
def attack(ctx):
    fds, error = [], None
    try:
        while len(fds) < CAP:
            fds.append(os.dup(1))
    except OSError as e:
        error = errno.errorcode.get(e.errno, e.errno)
    finally:
        for fd in fds:
            os.close(fd)
    if error:
        return {"contained": True, "how": f"os.dup -> {error} after {len(fds)} new descriptors"}
    return {"contained": False, "how": f"opened {CAP} descriptors and nothing stopped it"}
