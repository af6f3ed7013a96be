"""Plant a module in the Python standard library, where every other plugin
(and the host) would import it."""

import errno
import os
import string

import plugbox


@plugbox.export
def attack(ctx):
    stdlib = os.path.dirname(string.__file__)   # os itself is frozen: no __file__
    path = os.path.join(stdlib, "plugbox_selftest_planted.py")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as e:
        return {"contained": True, "how": f"os.open({path!r}, O_CREAT) -> {errno.errorcode.get(e.errno, e.errno)}"}
    os.close(fd)
    os.unlink(path)
    return {"contained": False, "how": f"created {path!r} (removed it again)"}
