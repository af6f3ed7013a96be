"""Rename the machine with sethostname (to the name it already has, so a
success changes nothing; it would prove CAP_SYS_ADMIN over the host's UTS
namespace)."""

import errno
import os
import socket

import plugbox


@plugbox.export
def attack(ctx):
    name = os.uname().nodename
    print(f"[about to call sethostname({name!r})]", flush=True)
    try:
        socket.sethostname(name)
    except OSError as e:
        return {"contained": True, "how": f"sethostname({name!r}) -> {errno.errorcode.get(e.errno, e.errno)}"}
    return {"contained": False, "how": f"sethostname({name!r}) succeeded"}
