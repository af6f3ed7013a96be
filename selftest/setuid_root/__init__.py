"""Become root: setuid(0)."""

import errno
import os

import plugbox


@plugbox.export
def attack(ctx):
    print("[about to call setuid(0)]", flush=True)
    try:
        os.setuid(0)
    except OSError as e:
        return {"contained": True, "how": f"setuid(0) -> {errno.errorcode.get(e.errno, e.errno)}"}
    return {"contained": False, "how": f"setuid(0) succeeded: uid {os.getuid()}, euid {os.geteuid()}"}
