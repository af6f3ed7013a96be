"""Pin kernel memory with empty files: create them in the temporary
directory until refused, capped at 100,000. A scratch tmpfs bounds bytes,
and empty files cost none: only an inode bound stops this (each inode pins
about a kilobyte of kernel memory that no resource limit counts). Without a
writable temporary directory there is nothing to fill."""

import errno
import os
import tempfile

import plugbox

CAP = 100_000


@plugbox.export
def attack(ctx):
    try:
        where = tempfile.gettempdir()
        base = tempfile.mkdtemp(prefix="inodes-", dir=where)
    except OSError as e:
        return {"contained": True, "how": f"tempfile.mkdtemp() -> {errno.errorcode.get(e.errno, e.errno)}"}
    made, error = 0, None
    try:
        while made < CAP:
            os.close(os.open(f"{base}/{made}", os.O_CREAT | os.O_WRONLY, 0o600))
            made += 1
    except OSError as e:
        error = errno.errorcode.get(e.errno, e.errno)
    finally:
        for i in range(made):
            os.unlink(f"{base}/{i}")
        os.rmdir(base)
    if error:
        return {"contained": made < CAP, "how": f"creating empty files in {where} -> {error} after {made}"}
    return {"contained": False, "how": f"created {CAP} empty files in {where} and nothing stopped it"}
