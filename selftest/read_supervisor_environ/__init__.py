"""Read the supervisor's environment (credentials often live there) from
/proc/PID/environ, with os.open and os.read."""

import errno
import os

import plugbox


@plugbox.export
def attack(ctx):
    path = f"/proc/{ctx['supervisor_pid']}/environ"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as e:
        return {"contained": True, "how": f"os.open({path!r}) -> {errno.errorcode.get(e.errno, e.errno)}"}
    try:
        data = os.read(fd, 120)
    except OSError as e:
        return {"contained": True, "how": f"os.open({path!r}) worked but read -> {errno.errorcode.get(e.errno, e.errno)}"}
    finally:
        os.close(fd)
    return {"contained": not data, "how": f"os.read({path!r}) -> {data!r}"}
