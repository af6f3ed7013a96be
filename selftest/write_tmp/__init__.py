"""Create a file in /tmp with tempfile (shared with the host unless the
policy grants a private scratch /tmp)."""

import errno
import os
import tempfile

import plugbox


@plugbox.export
def attack(ctx):
    try:
        fd, path = tempfile.mkstemp(prefix="plugbox-selftest-", dir="/tmp")
    except OSError as e:
        return {"contained": True, "how": f"tempfile.mkstemp(dir='/tmp') -> {errno.errorcode.get(e.errno, e.errno)}"}
    os.close(fd)
    os.unlink(path)
    return {"contained": False, "how": f"tempfile.mkstemp created {path!r} (removed it again)"}
