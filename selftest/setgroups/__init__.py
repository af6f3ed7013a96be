"""Add supplementary groups 0 (root) and 42 (shadow on Debian) with
setgroups: group membership opens files a uid alone cannot."""

import errno
import os

import plugbox


@plugbox.export
def attack(ctx):
    print("[about to call setgroups([0, 42])]", flush=True)
    try:
        os.setgroups([0, 42])
    except OSError as e:
        return {"contained": True, "how": f"setgroups([0, 42]) -> {errno.errorcode.get(e.errno, e.errno)}"}
    return {"contained": False, "how": f"setgroups([0, 42]) succeeded: groups {os.getgroups()}"}
