"""List the network interfaces (if_nameindex, and /sys/class/net): in its
own network namespace a worker has at most a loopback."""

import errno
import os
import socket

import plugbox


@plugbox.export
def attack(ctx):
    seen, how = set(), []
    try:
        names = [name for _, name in socket.if_nameindex()]
        how.append(f"if_nameindex() -> {names}")
        seen.update(names)
    except OSError as e:
        how.append(f"if_nameindex() -> {errno.errorcode.get(e.errno, e)}")
    try:
        names = sorted(os.listdir("/sys/class/net"))
        how.append(f"listdir('/sys/class/net') -> {names}")
        seen.update(names)
    except OSError as e:
        how.append(f"listdir('/sys/class/net') -> {errno.errorcode.get(e.errno, e)}")
    return {"contained": seen <= {"lo"}, "how": "; ".join(how)}
