"""Read the host's /etc/passwd by mapping it into memory (mmap, not read).
A worker may see a passwd file of its own (one line for its uid); it must
not be the host's, which ctx["passwd_id"] (device, inode) identifies."""

import errno
import mmap
import os

import plugbox


@plugbox.export
def attack(ctx):
    try:
        fd = os.open("/etc/passwd", os.O_RDONLY)
    except OSError as e:
        return {"contained": True, "how": f"open('/etc/passwd') -> {errno.errorcode.get(e.errno, e.errno)}"}
    try:
        st = os.fstat(fd)
        with mmap.mmap(fd, 0, prot=mmap.PROT_READ) as m:
            data = m[:40]
    except (OSError, ValueError) as e:
        return {"contained": True, "how": f"open('/etc/passwd') worked, mmap -> {e}"}
    finally:
        os.close(fd)
    if [st.st_dev, st.st_ino] != ctx["passwd_id"]:
        return {"contained": True, "how": f"mmap('/etc/passwd') read {data!r}: not the host's file"}
    return {"contained": False, "how": f"mmap('/etc/passwd') read the host's file: {data!r}"}
