"""Open the controlling terminal (/dev/tty): a worker must have none, so
no terminal can be read or typed into."""

import errno
import os

import plugbox


@plugbox.export
def attack(ctx):
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError as e:
        return {"contained": True, "how": f"open('/dev/tty') -> {errno.errorcode.get(e.errno, e.errno)}"}
    name = os.ttyname(fd) if os.isatty(fd) else "?"
    os.close(fd)
    return {"contained": False, "how": f"open('/dev/tty') opened the controlling terminal {name}"}
