"""Read /etc/shadow relative to a descriptor of /etc (openat with a dirfd)."""

import errno
import os

import plugbox


@plugbox.export
def attack(ctx):
    steps = []
    try:
        steps.append("open('/etc', O_DIRECTORY)")
        etc = os.open("/etc", os.O_RDONLY | os.O_DIRECTORY)
        try:
            steps.append("openat(etc, 'shadow')")
            fd = os.open("shadow", os.O_RDONLY, dir_fd=etc)
        finally:
            os.close(etc)
        data = os.read(fd, 40)
        os.close(fd)
    except OSError as e:
        return {"contained": True, "how": f"{steps[-1]} -> {errno.errorcode.get(e.errno, e.errno)}"}
    return {"contained": False, "how": f"openat(etc, 'shadow') read {data!r}"}
