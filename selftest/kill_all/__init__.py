"""Signal every process it may: kill(-1, 0). Signal 0 delivers nothing but
makes the kernel do the full permission check, so success means a real
signal would have reached some other process."""

import errno
import os

import plugbox


@plugbox.export
def attack(ctx):
    try:
        os.kill(-1, 0)
    except OSError as e:
        return {"contained": True, "how": f"kill(-1, 0) -> {errno.errorcode.get(e.errno, e.errno)}"}
    return {"contained": False, "how": "kill(-1, 0) succeeded: some other process can be signalled"}
