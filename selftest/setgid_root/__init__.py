"""Join group 0: setresgid(0, 0, 0)."""

import errno
import os

import plugbox


@plugbox.export
def attack(ctx):
    print("[about to call setresgid(0, 0, 0)]", flush=True)
    try:
        os.setresgid(0, 0, 0)
    except OSError as e:
        return {"contained": True, "how": f"setresgid(0, 0, 0) -> {errno.errorcode.get(e.errno, e.errno)}"}
    return {"contained": False, "how": f"setresgid(0, 0, 0) succeeded: gids {os.getresgid()}"}
